namespace Gateway.Log;

/// <summary>A topic's settings, stored in its <c>topic.json</c>. Sizes are bytes; -1 means unlimited.</summary>
public sealed record TopicConfig
{
    /// <summary>How long records are kept, per partition; -1 keeps them forever.</summary>
    public long RetentionMs { get; init; } = -1;

    /// <summary>How many bytes each partition keeps; -1 keeps everything.</summary>
    public long RetentionBytes { get; init; } = -1;

    /// <summary>Largest encoded record accepted.</summary>
    public int MaxRecordBytes { get; init; } = 1024 * 1024;

    /// <summary>Acknowledgement used when a produce request names none.</summary>
    public Acks Acks { get; init; } = Acks.Disk;
}
