using System.Collections.Concurrent;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Gateway.Groups;
using Microsoft.Extensions.Logging;
using KafkaTopicPartition = Confluent.Kafka.TopicPartition;

namespace Gateway.Storage.Kafka.Groups;

/// <summary>
/// HTTP consumer groups over a Kafka cluster, with no node owning anything: every change (a join, a heartbeat, a
/// fetch's lease renewal and positions, a commit, a lease running out) is a command appended to one partition of the
/// groups log (<c>Kafka:GroupsTopic</c>), and every node applies every command in that partition's order to its own
/// replica of the groups (<see cref="GroupCoordinator.Replica"/>). The log's order, decided by the partition's leader
/// and replicated by Kafka (acks=all, an idempotent producer), is the only order there is: two nodes racing for a
/// partition, a commit from a stale generation, a node that was paused past a member's session and wakes — each is
/// decided by where its command lands in the log, the same way on every node, and the writer answers its client only
/// with what applying its own command gave. Time inside the replicas is the commands' time (never earlier than the
/// command before), so leases are decided identically everywhere; a node that sees a lease run out by its own clock
/// appends a tick that expires it.
/// Committed offsets are also written as the Kafka consumer group's own offsets (the same group name), so Kafka's tools
/// see the group and its lag. Snapshots of the state (<c>Kafka:GroupsTopic</c> + <c>-snapshots</c>, compacted) let a
/// starting node read from the last snapshot rather than from the log's start.
/// </summary>
public sealed partial class KafkaGroups : IGroupCoordinator
{
    private const int SnapshotEveryCommands = 10_000;
    private const int MaxSnapshotBytes = 900_000;

    private readonly KafkaLogStorage _storage;
    private readonly KafkaClients _clients;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly LogClock _clock = new();
    private readonly GroupCoordinator _replica;
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal); // the applier's only
    private readonly ConcurrentDictionary<string, TaskCompletionSource<object?>> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _ticking = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _mirroring = new(StringComparer.Ordinal); // a copy to Kafka's group offsets runs
    private readonly ConcurrentDictionary<string, bool> _mirrorAgain = new(StringComparer.Ordinal); // the group committed since it began
    private readonly ConcurrentDictionary<Task, byte> _mirrors = new();
    private readonly string _node = Guid.NewGuid().ToString("N")[..12];
    private readonly KafkaTopicPartition _log;
    private readonly KafkaTopicPartition _snapshots;
    private readonly CancellationTokenSource _closing = new();
    private readonly IConsumer<byte[]?, byte[]?> _reader;
    private readonly int _snapshotIntervalMs;
    private ITimer? _ticker;
    private Thread? _applier;
    private long _sequence;
    private long _applied;
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _sinceSnapshot;
    private long _lastSnapshotAt;
    private int _disposed;

    private KafkaGroups(KafkaLogStorage storage, GroupOptions options, TimeProvider time, ILogger logger)
    {
        _storage = storage;
        _clients = storage.Clients;
        _time = time;
        _logger = logger;
        _replica = GroupCoordinator.Replica(options, topic => _counts.GetValueOrDefault(topic), _clock, logger);
        _log = new KafkaTopicPartition(storage.Options.GroupsTopic, 0);
        _snapshots = new KafkaTopicPartition(storage.Options.GroupsTopic + "-snapshots", 0);
        _snapshotIntervalMs = storage.Options.GroupSnapshotIntervalMs;
        _reader = _clients.NewConsumer("gateway-groups-log", fetchWaitMaxMs: 5);
        _lastSnapshotAt = Environment.TickCount64;
        SweepIntervalMs = Math.Max(250, options.SweepIntervalMs);
    }

    private int SweepIntervalMs { get; }

    /// <summary>
    /// Makes the groups log and its snapshots topic when they do not exist, reads the last snapshot and the log after
    /// it, and starts applying what other nodes append. Fails (the start is refused) when the cluster does not let it
    /// catch up within <c>Kafka:RequestTimeoutMs</c>.
    /// </summary>
    public static async Task<KafkaGroups> OpenAsync(KafkaLogStorage storage, GroupOptions options, TimeProvider time, ILogger logger, CancellationToken cancellationToken = default)
    {
        var groups = new KafkaGroups(storage, options, time, logger);
        try
        {
            await groups.StartAsync(cancellationToken).ConfigureAwait(false);
            storage.Coordination = groups;
            return groups;
        }
        catch
        {
            groups.Dispose();
            throw;
        }
    }

    public async ValueTask<MemberAssignment> JoinAsync(string group, string? memberId, IReadOnlyCollection<string> topics, int? sessionTimeoutMs, OffsetReset autoOffsetReset, string? owner = null) =>
        (MemberAssignment)(await IssueAsync(new GroupCommand
        {
            Op = "join",
            Group = group,
            Member = memberId ?? $"m-{Guid.NewGuid():N}",
            Owner = owner,
            Topics = [.. topics],
            SessionTimeoutMs = sessionTimeoutMs,
            Reset = autoOffsetReset,
        }).ConfigureAwait(false))!;

    public async ValueTask<MemberAssignment> HeartbeatAsync(string group, string memberId, string? owner = null) =>
        (MemberAssignment)(await IssueAsync(new GroupCommand { Op = "heartbeat", Group = group, Member = memberId, Owner = owner }).ConfigureAwait(false))!;

    public async ValueTask LeaveAsync(string group, string memberId, string? owner = null) =>
        await IssueAsync(new GroupCommand { Op = "leave", Group = group, Member = memberId, Owner = owner }).ConfigureAwait(false);

    public async ValueTask<MemberFetchPlan> BeginFetchAsync(string group, string memberId, string? owner = null) =>
        (MemberFetchPlan)(await IssueAsync(new GroupCommand { Op = "fetch", Group = group, Member = memberId, Owner = owner }).ConfigureAwait(false))!;

    public async ValueTask AdvancePositionsAsync(string group, string memberId, IReadOnlyDictionary<TopicPartition, long> nextOffsets, long resetVersion, string? owner = null)
    {
        if (nextOffsets.Count > 0)
        {
            await IssueAsync(new GroupCommand { Op = "advance", Group = group, Member = memberId, Owner = owner, ResetVersion = resetVersion, Offsets = ToList(nextOffsets) }).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyDictionary<TopicPartition, long>> CommitAsync(string group, string memberId, long generation, IReadOnlyDictionary<TopicPartition, long>? offsets, string? owner = null)
    {
        var committed = (IReadOnlyDictionary<TopicPartition, long>)(await IssueAsync(new GroupCommand
        {
            Op = "commit",
            Group = group,
            Member = memberId,
            Owner = owner,
            Generation = generation,
            Offsets = offsets is null ? null : ToList(offsets),
        }).ConfigureAwait(false))!;
        Mirror(group);
        return committed;
    }

    public async Task ResetOffsetsAsync(string group, IReadOnlyDictionary<TopicPartition, long> offsets)
    {
        await IssueAsync(new GroupCommand { Op = "reset", Group = group, Offsets = ToList(offsets) }).ConfigureAwait(false);
        Mirror(group);
    }

    public async ValueTask<GroupDescription> DescribeAsync(string group)
    {
        await CatchUpAsync().ConfigureAwait(false);
        return _replica.Describe(group);
    }

    public async ValueTask<IReadOnlyList<GroupDescription>> ListAsync()
    {
        await CatchUpAsync().ConfigureAwait(false);
        return _replica.List();
    }

    public async Task DeleteAsync(string group)
    {
        await IssueAsync(new GroupCommand { Op = "delete", Group = group }).ConfigureAwait(false);
        try
        {
            await _clients.Admin.DeleteGroupsAsync([group], new DeleteGroupsOptions { RequestTimeout = _clients.RequestTimeout }).ConfigureAwait(false);
        }
        catch (KafkaException ex)
        {
            // The Kafka group may not exist (nothing was committed) or the cluster may not delete groups: ours is gone.
            LogMirrorFailed(_logger, group, "delete", ex.Message);
        }
    }

    public void OnTopicChanged(string topic) =>
        _ = IssueQuietlyAsync(new GroupCommand { Op = "topicChanged", Topics = [topic] });

    public Task OnTopicDeletedAsync(string topic) =>
        IssueAsync(new GroupCommand { Op = "topicDeleted", Topics = [topic] });

    /// <summary>Stops applying and closes the reader; once (the host's stop and its container both dispose it).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        _ticker?.Dispose();
        _closing.Cancel();
        _applier?.Join(TimeSpan.FromSeconds(5));
        // Copies to Kafka's group offsets under way finish (each bounded by the request timeout) before the clients close.
        try
        {
            Task.WhenAll(_mirrors.Keys).Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // A copy that failed is the next commit's to make.
        }
        // librdkafka's close of a consumer with a group id may wait on the group's coordinator (seen against a
        // cluster that had just started); the log's reader commits nothing, so the stop waits a moment, not forever.
        var closing = Task.Run(() =>
        {
            try
            {
                _reader.Close();
            }
            catch (KafkaException)
            {
                // a cluster gone by now changes nothing
            }
            _reader.Dispose();
        });
        if (!closing.Wait(TimeSpan.FromSeconds(3)))
        {
            LogCloseSlow(_logger, _log.Topic);
        }
        foreach (var pending in _pending.Values)
        {
            pending.TrySetException(new StorageFailureException("The server is stopping."));
        }
        _replica.Dispose();
    }

    /// <summary>Ticks groups whose leases ran out by this node's clock: the tick's place in the log expires them everywhere.</summary>
    private void Tick()
    {
        if (_closing.IsCancellationRequested)
        {
            return;
        }
        foreach (string group in _replica.GroupsWithExpiredLeases(_time.GetUtcNow()))
        {
            if (_ticking.TryAdd(group, 0))
            {
                _ = TickAsync(group);
            }
        }
    }

    private async Task TickAsync(string group)
    {
        try
        {
            await IssueQuietlyAsync(new GroupCommand { Op = "tick", Group = group }).ConfigureAwait(false);
            // One tick a second per group at most, even when this node's clock runs ahead of the log's.
            await Task.Delay(TimeSpan.FromSeconds(1), _time).ConfigureAwait(false);
        }
        finally
        {
            _ticking.TryRemove(group, out _);
        }
    }

    /// <summary>
    /// Has the group's committed offsets, as this node's replica has them, written as the Kafka group's own (for
    /// Kafka's tools), in the background: the groups log is what the HTTP API answers from, and a commit is answered
    /// once it is there, never held up by the copy (Kafka's group coordinator may be moving, or slow). One copy per
    /// group at a time, each of the replica's latest offsets, so a late copy never carries an older commit than one
    /// this node copied before it.
    /// </summary>
    private void Mirror(string group)
    {
        _mirrorAgain[group] = true;
        if (!_mirroring.TryAdd(group, true))
        {
            return; // the running copy takes the latest offsets next
        }
        var copy = Task.Run(async () =>
        {
            try
            {
                while (_mirrorAgain.TryRemove(group, out _) && Volatile.Read(ref _disposed) == 0)
                {
                    IReadOnlyDictionary<TopicPartition, long> offsets;
                    try
                    {
                        offsets = _replica.Describe(group).CommittedOffsets;
                    }
                    catch (GroupNotFoundException)
                    {
                        return; // deleted meanwhile
                    }
                    await MirrorAsync(group, offsets).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
            {
                // The node is closing: the copy is left to the next commit, on any node.
            }
            finally
            {
                _mirroring.TryRemove(group, out _);
                if (_mirrorAgain.ContainsKey(group) && Volatile.Read(ref _disposed) == 0)
                {
                    Mirror(group); // asked for while this copy was ending
                }
            }
        });
        _mirrors.TryAdd(copy, 0);
        copy.ContinueWith(done => _mirrors.TryRemove(done, out _), TaskScheduler.Default);
    }

    /// <summary>Committed offsets as the Kafka group's own, for Kafka's tools; the groups log stays what the HTTP API answers from.</summary>
    private async Task MirrorAsync(string group, IReadOnlyDictionary<TopicPartition, long> offsets)
    {
        if (offsets.Count == 0)
        {
            return;
        }
        try
        {
            await _clients.Admin.AlterConsumerGroupOffsetsAsync(
                [new ConsumerGroupTopicPartitionOffsets(group, [.. offsets.Select(o => new TopicPartitionOffset(o.Key.Topic, o.Key.Partition, o.Value))])],
                new AlterConsumerGroupOffsetsOptions { RequestTimeout = _clients.RequestTimeout }).ConfigureAwait(false);
        }
        catch (KafkaException ex)
        {
            LogMirrorFailed(_logger, group, "commit", ex.Message);
        }
    }

    private static List<PartitionOffset> ToList(IReadOnlyDictionary<TopicPartition, long> offsets) =>
        [.. offsets.OrderBy(o => o.Key).Select(o => new PartitionOffset(o.Key.Topic, o.Key.Partition, o.Value))];

    private static Dictionary<TopicPartition, long> ToDictionary(List<PartitionOffset>? offsets) =>
        (offsets ?? []).ToDictionary(o => new TopicPartition(o.Topic, o.Partition), o => o.Offset);

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning, Message = "Group {Group}: the Kafka group's offsets were not updated ({What}): {Reason}")]
    private static partial void LogMirrorFailed(ILogger logger, string group, string what, string reason);
}
