namespace Gateway.Storage;

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

    /// <summary>
    /// What is wrong with these settings, naming the key (<c>retentionMs</c>, …) as the API and <c>topic.json</c> spell
    /// it, or null when they can be used. <paramref name="maxRecordBytesLimit"/> is the largest record the log's pages hold.
    /// </summary>
    public (string Key, string Problem)? ValidationError(int maxRecordBytesLimit)
    {
        if (RetentionMs is 0 or < -1)
        {
            return ("retentionMs", "retentionMs is a positive number of milliseconds, or -1 to keep records forever.");
        }
        if (RetentionBytes is 0 or < -1)
        {
            return ("retentionBytes", "retentionBytes is a positive number of bytes per partition, or -1 for no limit.");
        }
        if (MaxRecordBytes < 1 || MaxRecordBytes > maxRecordBytesLimit)
        {
            return ("maxRecordBytes", $"maxRecordBytes is between 1 and {maxRecordBytesLimit} (half a log page, less the batch header).");
        }
        if (!Enum.IsDefined(Acks))
        {
            return ("acks", "acks is 'disk' or 'memory'.");
        }
        return null;
    }
}
