namespace Gateway.Storage;

/// <summary>
/// Where a member fetch reads: the member's assignment, the offset to start from in each partition it holds (null
/// when nothing is committed: apply the member's <c>autoOffsetReset</c>), and a task that completes when the
/// group's assignments change, so a waiting fetch can pick up partitions handed to it. <see cref="ResetVersion"/>
/// changes when the group's offsets are reset: positions a reader holds from before are stale.
/// </summary>
public sealed record MemberFetchPlan(MemberAssignment Assignment, IReadOnlyDictionary<TopicPartition, long?> Positions, Task AssignmentChanged, long ResetVersion);
