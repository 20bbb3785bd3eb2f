using System.Text.Json;
using Gateway.Storage;

namespace Gateway.Server.Groups;

/// <summary>Join a group. <c>memberId</c> rejoins as that member (static membership); <c>sessionTimeoutMs</c> is the lease.</summary>
public sealed record JoinRequest(IReadOnlyList<string>? Topics, string? MemberId, int? SessionTimeoutMs, OffsetReset? AutoOffsetReset);

public sealed record PartitionRef(string Topic, int Partition);

/// <summary>A member's place in its group: generation, partitions it may read now, and when its lease ends.</summary>
public sealed record MemberResponse(
    string MemberId,
    long Generation,
    IReadOnlyList<PartitionRef> Assignments,
    IReadOnlyList<string> Topics,
    OffsetReset AutoOffsetReset,
    DateTimeOffset LeaseExpiresAt,
    int HeartbeatIntervalMs);

public sealed record PartitionOffset(string Topic, int Partition, long Offset);

/// <summary>Commit offsets (the next offset to read) for the given generation; without <c>offsets</c>, everything fetched so far.</summary>
public sealed record CommitRequest(long? Generation, IReadOnlyList<PartitionOffset>? Offsets);

public sealed record CommitResponse(long Generation, IReadOnlyList<PartitionOffset> Offsets);

/// <summary>
/// Move a group's committed offsets for reprocessing: <c>to</c> is <c>"earliest"</c>, <c>"latest"</c>,
/// <c>{"offset":N}</c> or <c>{"timestamp":T}</c>; <c>partitions</c> defaults to all of the topic's.
/// </summary>
public sealed record ResetOffsetsRequest(string? Topic, IReadOnlyList<int>? Partitions, JsonElement To);

public sealed record ResetOffsetsResponse(IReadOnlyList<PartitionOffset> Offsets);

public sealed record GroupSummary(string Name, long Generation, int Members);

public sealed record GroupList(IReadOnlyList<GroupSummary> Groups);

public sealed record GroupMemberView(
    string MemberId,
    IReadOnlyList<string> Topics,
    IReadOnlyList<PartitionRef> Assignments,
    IReadOnlyList<PartitionRef> Pending,
    DateTimeOffset LeaseExpiresAt,
    int SessionTimeoutMs);

/// <summary>A partition's committed offset, end offset and lag (end − committed; null when nothing is committed).</summary>
public sealed record GroupOffsetView(string Topic, int Partition, long? CommittedOffset, long EndOffset, long? Lag);

public sealed record GroupView(string Name, long Generation, IReadOnlyList<GroupMemberView> Members, IReadOnlyList<GroupOffsetView> Offsets);

/// <summary>A member fetch that found its position outside the partition's range and moved it.</summary>
public sealed record PositionReset(string Topic, int Partition, long Offset, long ResetTo, string Reason);

/// <summary>Records for a member, from every partition it holds, with its current generation and assignment.</summary>
public sealed record MemberFetchResponse(
    string MemberId,
    long Generation,
    IReadOnlyList<PartitionRef> Assignments,
    IReadOnlyList<Records.FetchedRecord> Records,
    IReadOnlyList<PositionReset>? Resets);
