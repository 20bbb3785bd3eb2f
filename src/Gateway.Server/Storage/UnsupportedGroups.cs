using Gateway.Storage;

namespace Gateway.Server.Storage;

/// <summary>
/// Consumer groups on a backend that does not offer them yet (the Kafka backend): every call is 501
/// <c>not_supported</c> naming <c>consumerGroups</c>; the list is empty (so <c>/metrics</c> still scrapes).
/// </summary>
internal sealed class UnsupportedGroups : IGroupCoordinator
{
    private static NotSupportedByBackendException NotSupported() =>
        new("consumerGroups", "This server's storage backend (kafka) does not offer HTTP consumer groups yet: read partitions by offset, or use a Kafka consumer group against the cluster.");

    public ValueTask<MemberAssignment> JoinAsync(string group, string? memberId, IReadOnlyCollection<string> topics, int? sessionTimeoutMs, OffsetReset autoOffsetReset, string? owner = null) => throw NotSupported();

    public ValueTask<MemberAssignment> HeartbeatAsync(string group, string memberId, string? owner = null) => throw NotSupported();

    public ValueTask LeaveAsync(string group, string memberId, string? owner = null) => throw NotSupported();

    public ValueTask<MemberFetchPlan> BeginFetchAsync(string group, string memberId, string? owner = null) => throw NotSupported();

    public ValueTask AdvancePositionsAsync(string group, string memberId, IReadOnlyDictionary<TopicPartition, long> nextOffsets, long resetVersion, string? owner = null) => throw NotSupported();

    public Task<IReadOnlyDictionary<TopicPartition, long>> CommitAsync(string group, string memberId, long generation, IReadOnlyDictionary<TopicPartition, long>? offsets, string? owner = null) => throw NotSupported();

    public Task ResetOffsetsAsync(string group, IReadOnlyDictionary<TopicPartition, long> offsets) => throw NotSupported();

    public ValueTask<GroupDescription> DescribeAsync(string group) => throw NotSupported();

    public ValueTask<IReadOnlyList<GroupDescription>> ListAsync() => new([]);

    public Task DeleteAsync(string group) => throw NotSupported();

    public void OnTopicChanged(string topic)
    {
    }

    public Task OnTopicDeletedAsync(string topic) => Task.CompletedTask;

    public void Dispose()
    {
    }
}
