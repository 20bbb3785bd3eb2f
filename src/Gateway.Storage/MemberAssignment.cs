namespace Gateway.Storage;

/// <summary>
/// What a member holds after join, heartbeat or fetch: the group's generation and the partitions it may read
/// now. A partition still held by a member that has not yet seen the new generation is left out until it has.
/// </summary>
public sealed record MemberAssignment(
    string MemberId,
    long Generation,
    IReadOnlyList<TopicPartition> Assignments,
    IReadOnlyList<string> Topics,
    OffsetReset AutoOffsetReset,
    DateTimeOffset LeaseExpiresAt,
    int HeartbeatIntervalMs);
