using System.Text.Json;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.Logging;
using KafkaTopicPartition = Confluent.Kafka.TopicPartition;

namespace Gateway.Storage.Kafka.Groups;

/// <summary>The groups log itself: made and read up to its end at start, commands appended and read back, and the applier that applies each in order.</summary>
public sealed partial class KafkaGroups
{
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

    private async Task<(long Low, long High)> WatermarksAsync(KafkaTopicPartition partition, CancellationToken cancellationToken)
    {
        try
        {
            return await _clients.WithReaderAsync(reader =>
            {
                var marks = _clients.QueryWatermarks(reader, partition);
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

    [LoggerMessage(EventId = 318, Level = LogLevel.Warning, Message = "The reader of {Topic} did not close within 3 s; the stop goes on without it")]
    private static partial void LogCloseSlow(ILogger logger, string topic);
}
