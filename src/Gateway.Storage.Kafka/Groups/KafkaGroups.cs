using System.Collections.Concurrent;
using System.Text.Json;
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
        await MirrorAsync(group, committed).ConfigureAwait(false);
        return committed;
    }

    public async Task ResetOffsetsAsync(string group, IReadOnlyDictionary<TopicPartition, long> offsets)
    {
        await IssueAsync(new GroupCommand { Op = "reset", Group = group, Offsets = ToList(offsets) }).ConfigureAwait(false);
        await MirrorAsync(group, offsets).ConfigureAwait(false);
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

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        await EnsureTopicsAsync().ConfigureAwait(false);
        long start = await LoadSnapshotAsync(cancellationToken).ConfigureAwait(false);
        var (low, high) = await WatermarksAsync(_log, cancellationToken).ConfigureAwait(false);
        if (start < low)
        {
            // Retention removed commands the last snapshot does not cover: what they changed is lost (members rejoin).
            LogGap(_logger, _log.Topic, start, low);
            start = low;
        }
        Volatile.Write(ref _applied, start);
        _reader.Assign(new TopicPartitionOffset(_log, start));
        _applier = new Thread(Run) { IsBackground = true, Name = "gateway-groups-log" };
        _applier.Start();
        await WaitAppliedAsync(high, cancellationToken).ConfigureAwait(false);
        _ticker = _time.CreateTimer(_ => Tick(), null, TimeSpan.FromMilliseconds(SweepIntervalMs), TimeSpan.FromMilliseconds(SweepIntervalMs));
    }

    private async Task EnsureTopicsAsync()
    {
        var replication = _storage.Options.ReplicationFactor;
        try
        {
            await _clients.Admin.CreateTopicsAsync(
                [
                    new TopicSpecification
                    {
                        Name = _log.Topic, NumPartitions = 1, ReplicationFactor = replication,
                        Configs = new() { ["cleanup.policy"] = "delete", ["retention.ms"] = "604800000" },
                    },
                    new TopicSpecification
                    {
                        Name = _snapshots.Topic, NumPartitions = 1, ReplicationFactor = replication,
                        Configs = new() { ["cleanup.policy"] = "compact" },
                    },
                ],
                new CreateTopicsOptions { RequestTimeout = _clients.RequestTimeout, OperationTimeout = _clients.RequestTimeout }).ConfigureAwait(false);
        }
        catch (CreateTopicsException ex) when (ex.Results.All(r => r.Error.Code is ErrorCode.NoError or ErrorCode.TopicAlreadyExists))
        {
            // made by another node before
        }
        catch (KafkaException ex)
        {
            // A cluster that does not create topics through the admin API (librdkafka's mock) may make them on first
            // use: an empty record (skipped by readers) asks for that; a cluster that does neither refuses the start.
            LogTopicsNotCreated(_logger, _log.Topic, ex.Message);
            try
            {
                foreach (var partition in new[] { _log, _snapshots })
                {
                    await _clients.Durable.ProduceAsync(partition, new Message<byte[]?, byte[]?> { Key = null, Value = null }).ConfigureAwait(false);
                }
            }
            catch (ProduceException<byte[]?, byte[]?> failed)
            {
                throw new StorageFailureException(
                    $"The groups log could not be made: create the topics {_log.Topic} (1 partition, cleanup.policy=delete) and {_snapshots.Topic} " +
                    $"(1 partition, cleanup.policy=compact) in the cluster, or let this node create topics ({failed.Error.Reason}).", failed);
            }
        }
    }

    /// <summary>Reads the snapshots topic to its end and imports the last snapshot; returns the log offset to apply from.</summary>
    private async Task<long> LoadSnapshotAsync(CancellationToken cancellationToken)
    {
        var (_, high) = await WatermarksAsync(_snapshots, cancellationToken).ConfigureAwait(false);
        if (high <= 0)
        {
            return 0;
        }
        var timeout = _clients.RequestTimeout;
        var last = await _clients.WithReaderAsync(reader =>
        {
            byte[]? value = null;
            reader.Assign(new TopicPartitionOffset(_snapshots, Offset.Beginning));
            var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            while (Environment.TickCount64 < deadline)
            {
                var result = reader.Consume(TimeSpan.FromMilliseconds(100));
                if (result is null)
                {
                    continue;
                }
                if (!result.IsPartitionEOF)
                {
                    value = result.Message.Value ?? value;
                }
                if ((result.IsPartitionEOF ? result.Offset.Value : result.Offset.Value + 1) >= high)
                {
                    return value;
                }
            }
            throw new StorageFailureException($"The Kafka cluster did not serve {_snapshots.Topic} within Kafka:RequestTimeoutMs.");
        }, cancellationToken).ConfigureAwait(false);
        if (last is null)
        {
            return 0;
        }
        GroupSnapshot? snapshot;
        try
        {
            snapshot = JsonSerializer.Deserialize(last, GroupsJsonContext.Default.GroupSnapshot);
        }
        catch (JsonException ex)
        {
            LogBadRecord(_logger, _snapshots.Topic, ex.Message);
            return 0;
        }
        if (snapshot is null)
        {
            return 0;
        }
        _replica.ImportState(snapshot.Groups);
        ImportKeys(snapshot.Keys);
        foreach (var (topic, count) in snapshot.Counts)
        {
            _counts[topic] = count;
        }
        _clock.AdvanceTo(snapshot.Clock);
        return snapshot.Through;
    }

    private async Task<(long Low, long High)> WatermarksAsync(KafkaTopicPartition partition, CancellationToken cancellationToken)
    {
        var timeout = _clients.RequestTimeout;
        try
        {
            return await _clients.WithReaderAsync(reader =>
            {
                var marks = reader.QueryWatermarkOffsets(partition, timeout);
                return (marks.Low.Value, marks.High.Value);
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (KafkaException ex)
        {
            throw new StorageFailureException($"The Kafka cluster did not give the offsets of {partition.Topic}: {ex.Error.Reason}.", ex);
        }
    }

    /// <summary>Waits until this node has applied everything in the groups log up to now (reads that must see every write before them).</summary>
    private async Task CatchUpAsync()
    {
        var (_, high) = await WatermarksAsync(_log, _closing.Token).ConfigureAwait(false);
        await WaitAppliedAsync(high, _closing.Token).ConfigureAwait(false);
    }

    private async Task WaitAppliedAsync(long target, CancellationToken cancellationToken)
    {
        var deadline = Environment.TickCount64 + (long)_clients.RequestTimeout.TotalMilliseconds;
        while (Volatile.Read(ref _applied) < target)
        {
            var progress = Volatile.Read(ref _progress);
            if (Volatile.Read(ref _applied) >= target)
            {
                break;
            }
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                throw new StorageFailureException($"This node could not read the groups log ({_log.Topic}) up to offset {target} within Kafka:RequestTimeoutMs.");
            }
            try
            {
                await progress.Task.WaitAsync(TimeSpan.FromMilliseconds(left), cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // the loop reports it
            }
        }
    }

    /// <summary>Appends a command and answers with what applying it gave on this node, once this node has read it back.</summary>
    private async Task<object?> IssueAsync(GroupCommand command)
    {
        if (command.Id.Length == 0)
        {
            command.Id = NextCommandId();
        }
        // The replicas' time is the commands' time, as this node's clock gives it (kept in the command, not in the
        // record's timestamp, which Kafka's time-based retention reads).
        command.At = _time.GetUtcNow();
        command.Counts = CountsFor(command);
        var answer = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[command.Id] = answer;
        try
        {
            byte[] value = JsonSerializer.SerializeToUtf8Bytes(command, GroupsJsonContext.Default.GroupCommand);
            await _clients.Durable.ProduceAsync(_log, new Message<byte[]?, byte[]?> { Key = null, Value = value }).ConfigureAwait(false);
            return await answer.Task.WaitAsync(_clients.RequestTimeout).ConfigureAwait(false);
        }
        catch (ProduceException<byte[]?, byte[]?> ex)
        {
            throw new StorageFailureException($"The Kafka cluster did not take the group change ({_log.Topic}): {ex.Error.Reason}.", ex);
        }
        catch (TimeoutException ex)
        {
            throw new StorageFailureException($"The group change was written to {_log.Topic} but not read back within Kafka:RequestTimeoutMs.", ex);
        }
        finally
        {
            _pending.TryRemove(command.Id, out _);
        }
    }

    private string NextCommandId() => $"{_node}:{Interlocked.Increment(ref _sequence)}";

    private async Task IssueQuietlyAsync(GroupCommand command)
    {
        try
        {
            await IssueAsync(command).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is StorageFailureException or KafkaException)
        {
            LogCommandFailed(_logger, command.Op, command.Group, ex.Message);
        }
    }

    private Dictionary<string, int>? CountsFor(GroupCommand command)
    {
        if (command.Op is "topicDeleted" or "claim" or "done" or "release")
        {
            return null;
        }
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var topics = command.Group.Length > 0 ? _replica.TopicsOf(command.Group).Concat(command.Topics ?? []) : command.Topics ?? [];
        foreach (string topic in topics)
        {
            if (_storage.TryGetTopic(topic, out var known))
            {
                counts[topic] = known.PartitionCount;
            }
        }
        return counts.Count > 0 ? counts : null;
    }

    /// <summary>The applier: reads the groups log in order and applies each command; the only thread that changes the replica.</summary>
    private void Run()
    {
        while (!_closing.IsCancellationRequested)
        {
            ConsumeResult<byte[]?, byte[]?>? result;
            try
            {
                result = _reader.Consume(100);
            }
            catch (ConsumeException ex)
            {
                LogReadFailed(_logger, _log.Topic, ex.Error.Reason);
                Thread.Sleep(100);
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            if (result is null)
            {
                continue;
            }
            if (result.IsPartitionEOF)
            {
                Advance(result.Offset.Value);
                continue;
            }
            Apply(result);
            PruneKeys(result.Offset.Value);
            Advance(result.Offset.Value + 1);
            MaybeSnapshot(result.Offset.Value + 1);
        }
    }

    private void Advance(long next)
    {
        if (next <= Volatile.Read(ref _applied))
        {
            return;
        }
        Volatile.Write(ref _applied, next);
        var previous = Interlocked.Exchange(ref _progress, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        previous.TrySetResult();
    }

    private void Apply(ConsumeResult<byte[]?, byte[]?> result)
    {
        GroupCommand? command;
        try
        {
            command = result.Message.Value is { } value ? JsonSerializer.Deserialize(value, GroupsJsonContext.Default.GroupCommand) : null;
        }
        catch (JsonException ex)
        {
            LogBadRecord(_logger, _log.Topic, ex.Message);
            return;
        }
        if (command is null)
        {
            return;
        }
        if (command.At is { } at)
        {
            _clock.AdvanceTo(at);
        }
        else if (result.Message.Timestamp.Type != TimestampType.NotAvailable)
        {
            _clock.AdvanceTo(DateTimeOffset.FromUnixTimeMilliseconds(result.Message.Timestamp.UnixTimestampMs));
        }
        object? outcome = null;
        Exception? failure = null;
        try
        {
            MergeCounts(command.Counts);
            outcome = Execute(command);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Every replica fails the same command the same way; the writer's client is told why.
            failure = ex;
        }
        if (_pending.TryGetValue(command.Id, out var answer))
        {
            if (failure is not null)
            {
                answer.TrySetException(failure);
            }
            else
            {
                answer.TrySetResult(outcome);
            }
        }
    }

    private void MergeCounts(Dictionary<string, int>? counts)
    {
        if (counts is null)
        {
            return;
        }
        foreach (var (topic, count) in counts.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            // Partitions are only ever added: a writer whose metadata lags cannot take them away.
            if (count > _counts.GetValueOrDefault(topic))
            {
                _counts[topic] = count;
                _replica.OnTopicChanged(topic);
            }
        }
    }

    private object? Execute(GroupCommand c)
    {
        switch (c.Op)
        {
            case "join":
                return _replica.Join(c.Group, c.Member, c.Topics ?? [], c.SessionTimeoutMs, c.Reset, c.Owner);
            case "heartbeat":
                return _replica.Heartbeat(c.Group, c.Member!, c.Owner);
            case "leave":
                _replica.Leave(c.Group, c.Member!, c.Owner);
                return null;
            case "fetch":
                return _replica.BeginFetch(c.Group, c.Member!, c.Owner);
            case "advance":
                _replica.AdvancePositions(c.Group, c.Member!, ToDictionary(c.Offsets), c.ResetVersion, c.Owner);
                return null;
            case "commit":
                return _replica.CommitAsync(c.Group, c.Member!, c.Generation, c.Offsets is null ? null : ToDictionary(c.Offsets), c.Owner).GetAwaiter().GetResult();
            case "reset":
                _replica.ResetOffsetsAsync(c.Group, ToDictionary(c.Offsets)).GetAwaiter().GetResult();
                return null;
            case "delete":
                _replica.DeleteAsync(c.Group).GetAwaiter().GetResult();
                return null;
            case "tick":
                _replica.ExpireLeases(c.Group);
                return null;
            case "topicChanged":
                return null; // the counts it carries did the work
            case "claim":
                return ApplyClaim(c);
            case "done":
                ApplyDone(c);
                return null;
            case "release":
                ApplyRelease(c);
                return null;
            case "topicDeleted":
                foreach (string topic in c.Topics ?? [])
                {
                    ForgetKeys(topic);
                    _counts.Remove(topic);
                    _replica.OnTopicDeletedAsync(topic).GetAwaiter().GetResult();
                }
                return null;
            default:
                LogBadRecord(_logger, _log.Topic, $"unknown command '{c.Op}'");
                return null;
        }
    }

    /// <summary>Writes the state as of <paramref name="through"/> now and then, so a starting node reads the log from there.</summary>
    private void MaybeSnapshot(long through)
    {
        _sinceSnapshot++;
        if (_sinceSnapshot < SnapshotEveryCommands && Environment.TickCount64 - _lastSnapshotAt < _snapshotIntervalMs)
        {
            return;
        }
        _sinceSnapshot = 0;
        _lastSnapshotAt = Environment.TickCount64;
        var snapshot = new GroupSnapshot
        {
            Through = through,
            Clock = _clock.GetUtcNow(),
            Counts = new Dictionary<string, int>(_counts, StringComparer.Ordinal),
            Groups = [.. _replica.ExportState()],
            Keys = ExportKeys(),
        };
        byte[] value = JsonSerializer.SerializeToUtf8Bytes(snapshot, GroupsJsonContext.Default.GroupSnapshot);
        if (value.Length > MaxSnapshotBytes)
        {
            LogSnapshotTooLarge(_logger, value.Length);
            return;
        }
        try
        {
            _clients.Durable.Produce(_snapshots, new Message<byte[]?, byte[]?> { Key = "state"u8.ToArray(), Value = value }, report =>
            {
                if (report.Error.IsError)
                {
                    LogSnapshotFailed(_logger, report.Error.Reason);
                }
            });
        }
        catch (KafkaException ex)
        {
            LogSnapshotFailed(_logger, ex.Message);
        }
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

    [LoggerMessage(EventId = 311, Level = LogLevel.Warning, Message = "The groups log {Topic} was not created through the admin API ({Reason}); asking the cluster to make it on first use")]
    private static partial void LogTopicsNotCreated(ILogger logger, string topic, string reason);

    [LoggerMessage(EventId = 312, Level = LogLevel.Error, Message = "The groups log {Topic} starts at {Low} but the last snapshot ends at {Start}: changes in between are lost")]
    private static partial void LogGap(ILogger logger, string topic, long start, long low);

    [LoggerMessage(EventId = 313, Level = LogLevel.Warning, Message = "A record of {Topic} is not a group command or snapshot and is skipped: {Reason}")]
    private static partial void LogBadRecord(ILogger logger, string topic, string reason);

    [LoggerMessage(EventId = 314, Level = LogLevel.Warning, Message = "Reading the groups log {Topic} failed: {Reason}")]
    private static partial void LogReadFailed(ILogger logger, string topic, string reason);

    [LoggerMessage(EventId = 315, Level = LogLevel.Warning, Message = "Group change {Op} of {Group} failed: {Reason}")]
    private static partial void LogCommandFailed(ILogger logger, string op, string group, string reason);

    [LoggerMessage(EventId = 316, Level = LogLevel.Warning, Message = "A groups snapshot of {Bytes} bytes is too large to write; starting nodes read more of the log")]
    private static partial void LogSnapshotTooLarge(ILogger logger, int bytes);

    [LoggerMessage(EventId = 318, Level = LogLevel.Warning, Message = "The reader of {Topic} did not close within 3 s; the stop goes on without it")]
    private static partial void LogCloseSlow(ILogger logger, string topic);

    [LoggerMessage(EventId = 317, Level = LogLevel.Warning, Message = "Writing a groups snapshot failed: {Reason}")]
    private static partial void LogSnapshotFailed(ILogger logger, string reason);

    /// <summary>The replicas' clock: the time of the command being applied, never going back.</summary>
    private sealed class LogClock : TimeProvider
    {
        private long _ticks = DateTimeOffset.UnixEpoch.UtcTicks;

        public void AdvanceTo(DateTimeOffset time)
        {
            if (time.UtcTicks > Volatile.Read(ref _ticks))
            {
                Volatile.Write(ref _ticks, time.UtcTicks);
            }
        }

        public override DateTimeOffset GetUtcNow() => new(Volatile.Read(ref _ticks), TimeSpan.Zero);
    }
}
