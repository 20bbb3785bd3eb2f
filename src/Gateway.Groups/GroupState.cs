using Gateway.Storage;

namespace Gateway.Groups;

/// <summary>A group's whole state as a replica exports it (a snapshot of the command log) and imports it again.</summary>
public sealed record GroupState(
    string Name,
    long Generation,
    long ResetVersion,
    IReadOnlyList<MemberState> Members,
    IReadOnlyList<PartitionOffset> Committed);

/// <summary>One member in a <see cref="GroupState"/>, its lease and session positions included.</summary>
public sealed record MemberState(
    string Id,
    string? Owner,
    IReadOnlyList<string> Topics,
    int SessionTimeoutMs,
    OffsetReset AutoOffsetReset,
    DateTimeOffset LeaseExpiresAt,
    IReadOnlyList<TopicPartition> Target,
    IReadOnlyList<TopicPartition> Owned,
    IReadOnlyList<PartitionOffset> Positions);

/// <summary>An offset of one partition.</summary>
public sealed record PartitionOffset(string Topic, int Partition, long Offset);
