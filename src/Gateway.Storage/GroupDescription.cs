namespace Gateway.Storage;

/// <summary>A group as it stands: generation, members with what they hold, and committed offsets.</summary>
public sealed record GroupDescription(
    string Name,
    long Generation,
    IReadOnlyList<MemberDescription> Members,
    IReadOnlyDictionary<TopicPartition, long> CommittedOffsets);

/// <summary>One member of a group.</summary>
public sealed record MemberDescription(
    string MemberId,
    IReadOnlyList<string> Topics,
    IReadOnlyList<TopicPartition> Assignments,
    IReadOnlyList<TopicPartition> Pending,
    DateTimeOffset LeaseExpiresAt,
    int SessionTimeoutMs);
