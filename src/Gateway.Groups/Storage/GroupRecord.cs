using Gateway.Storage;

namespace Gateway.Groups.Storage;

/// <summary>A group's membership as LiteDB keeps it (committed offsets are kept apart, one document each).</summary>
internal sealed class GroupRecord
{
    public string Id { get; set; } = "";

    public long Generation { get; set; }

    public List<MemberRecord> Members { get; set; } = [];
}

internal sealed class MemberRecord
{
    public string Id { get; set; } = "";

    /// <summary>The principal that made the member (null in records written before members had owners).</summary>
    public string? Owner { get; set; }

    public List<string> Topics { get; set; } = [];

    public int SessionTimeoutMs { get; set; }

    public OffsetReset AutoOffsetReset { get; set; }

    public List<string> Target { get; set; } = [];

    public List<string> Owned { get; set; } = [];
}

internal sealed class OffsetRecord
{
    public string Id { get; set; } = "";

    public string Group { get; set; } = "";

    public string Topic { get; set; } = "";

    public int Partition { get; set; }

    public long Offset { get; set; }

    public static string KeyOf(string group, TopicPartition tp) => $"{group}\u0001{tp.Topic}\u0001{tp.Partition}";
}
