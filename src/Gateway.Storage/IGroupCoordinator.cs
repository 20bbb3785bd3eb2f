namespace Gateway.Storage;

/// <summary>
/// Consumer groups as the HTTP API serves them, asynchronous because a backend may keep them elsewhere (the embedded one answers at once): members with leases (renewed by every call), generations, partitions
/// assigned so that no partition is served to two members at once, session positions, fenced commits. A member
/// belongs to the <c>owner</c> that made it (a principal's name): another owner naming it is told it does not exist
/// (<see cref="UnknownMemberException"/>). The embedded backend keeps groups in LiteDB.
/// </summary>
public interface IGroupCoordinator : IDisposable
{
    /// <summary>
    /// Joins a member. With the <paramref name="memberId"/> of a member whose lease still runs, it takes that member's
    /// place without a rebalance (static membership) unless its topics changed.
    /// </summary>
    ValueTask<MemberAssignment> JoinAsync(string group, string? memberId, IReadOnlyCollection<string> topics, int? sessionTimeoutMs, OffsetReset autoOffsetReset, string? owner = null);

    /// <summary>Renews the lease and tells the member its generation and what it holds now.</summary>
    ValueTask<MemberAssignment> HeartbeatAsync(string group, string memberId, string? owner = null);

    /// <summary>Removes the member at once; its partitions go to the others.</summary>
    ValueTask LeaveAsync(string group, string memberId, string? owner = null);

    /// <summary>
    /// Starts a member fetch: renews the lease and returns what the member holds with the offset to read from in each
    /// partition (its session position, else the committed offset, else null: apply <c>autoOffsetReset</c>), and a
    /// task that completes when the group's assignments change.
    /// </summary>
    ValueTask<MemberFetchPlan> BeginFetchAsync(string group, string memberId, string? owner = null);

    /// <summary>
    /// Records how far a member has fetched, for partitions it still holds — unless the group's offsets were reset
    /// since the plan the fetch read with (<paramref name="resetVersion"/>): the reset wins.
    /// </summary>
    ValueTask AdvancePositionsAsync(string group, string memberId, IReadOnlyDictionary<TopicPartition, long> nextOffsets, long resetVersion, string? owner = null);

    /// <summary>
    /// Commits offsets (the next offset to read, Kafka's convention) for partitions the member holds in
    /// <paramref name="generation"/>; with no offsets, everything fetched so far. All or nothing; durable when the task
    /// completes. Returns what was committed.
    /// </summary>
    Task<IReadOnlyDictionary<TopicPartition, long>> CommitAsync(string group, string memberId, long generation, IReadOnlyDictionary<TopicPartition, long>? offsets, string? owner = null);

    /// <summary>Sets committed offsets (reprocessing); members reading those partitions restart from them.</summary>
    Task ResetOffsetsAsync(string group, IReadOnlyDictionary<TopicPartition, long> offsets);

    /// <summary>The group's generation, members and committed offsets; <see cref="GroupNotFoundException"/> if none.</summary>
    ValueTask<GroupDescription> DescribeAsync(string group);

    /// <summary>Every group, by name.</summary>
    ValueTask<IReadOnlyList<GroupDescription>> ListAsync();

    /// <summary>Deletes a group without members, committed offsets included.</summary>
    Task DeleteAsync(string group);

    /// <summary>A topic's partition count changed: groups reading it rebalance.</summary>
    void OnTopicChanged(string topic);

    /// <summary>A topic was deleted: its committed offsets go, and groups reading it rebalance.</summary>
    Task OnTopicDeletedAsync(string topic);
}
