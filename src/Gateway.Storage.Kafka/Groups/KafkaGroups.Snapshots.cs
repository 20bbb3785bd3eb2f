using System.Text.Json;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage.Kafka.Groups;

/// <summary>Snapshots of the replicated state: the last one read at start, a new one written now and then by the applier.</summary>
public sealed partial class KafkaGroups
{
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

    [LoggerMessage(EventId = 316, Level = LogLevel.Warning, Message = "A groups snapshot of {Bytes} bytes is too large to write; starting nodes read more of the log")]
    private static partial void LogSnapshotTooLarge(ILogger logger, int bytes);

    [LoggerMessage(EventId = 317, Level = LogLevel.Warning, Message = "Writing a groups snapshot failed: {Reason}")]
    private static partial void LogSnapshotFailed(ILogger logger, string reason);
}
