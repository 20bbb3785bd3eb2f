using System.Collections.Concurrent;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using KafkaTopicPartition = Confluent.Kafka.TopicPartition;

namespace Gateway.Storage.Kafka;

/// <summary>
/// The node's tail reader: one assign-only consumer, on a thread of its own, that follows every partition someone on
/// this node waits on (a long-poll, an SSE stream, a group member's fetch) from its end offset on. The records it
/// reads go to the partition's tail buffer, which answers reads of the recent offsets without asking the cluster, and
/// move the partition's end offset on, which wakes every waiter at once — so a thousand SSE subscribers of a
/// partition cost one Kafka fetch stream, not a thousand. A partition nobody waited on or read for
/// <see cref="IdleMs"/> is let go. Consumers only ever receive records below the high watermark: what the tail
/// hands on is committed.
/// </summary>
internal sealed partial class KafkaTail : IDisposable
{
    /// <summary>A followed partition nobody waited on or read from its buffer for this long is let go.</summary>
    public const int IdleMs = 30_000;

    private readonly KafkaLogStorage _storage;
    private readonly ILogger _logger;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly ConcurrentDictionary<KafkaTopicPartition, KafkaPartition> _followed = new();
    private readonly Lock _assign = new();
    private readonly Thread _thread;
    private volatile bool _closing;

    public KafkaTail(KafkaLogStorage storage, ILogger logger)
    {
        _storage = storage;
        _logger = logger;
        _consumer = storage.Clients.NewConsumer("gateway-tail", fetchWaitMaxMs: storage.Options.TailFetchWaitMs);
        _thread = new Thread(Run) { IsBackground = true, Name = "gateway-kafka-tail" };
        _thread.Start();
    }

    /// <summary>Follows the partition from <paramref name="offset"/> on (its end offset as last seen); a partition followed already is left as it is.</summary>
    public void Follow(KafkaPartition partition, long offset)
    {
        var key = new KafkaTopicPartition(partition.Topic, partition.Partition);
        lock (_assign)
        {
            if (_closing)
            {
                return;
            }
            if (_followed.TryGetValue(key, out var followed))
            {
                if (ReferenceEquals(followed, partition))
                {
                    return;
                }
                // A topic deleted and made again under the same name: the new partition takes the old one's place.
                Let(key, followed);
            }
            partition.TailStarted(offset);
            _followed[key] = partition;
            try
            {
                _consumer.IncrementalAssign([new TopicPartitionOffset(key, offset)]);
            }
            catch (KafkaException ex)
            {
                _followed.TryRemove(key, out _);
                partition.TailStopped();
                LogFollowFailed(_logger, partition.Topic, partition.Partition, ex.Error.Reason);
            }
        }
    }

    /// <summary>Stops following the partition (its topic is gone, or nobody waits).</summary>
    public void Unfollow(KafkaPartition partition)
    {
        var key = new KafkaTopicPartition(partition.Topic, partition.Partition);
        lock (_assign)
        {
            if (_followed.TryGetValue(key, out var followed) && ReferenceEquals(followed, partition))
            {
                Let(key, partition);
            }
        }
    }

    public void Dispose()
    {
        lock (_assign)
        {
            _closing = true;
        }
        _thread.Join();
        foreach (var partition in _followed.Values)
        {
            partition.TailStopped();
        }
        // A consumer's close may wait on a cluster that does not answer: the stop waits a moment, not forever.
        var closing = Task.Run(() =>
        {
            try
            {
                _consumer.Close();
            }
            catch (KafkaException)
            {
                // a cluster gone by now changes nothing
            }
            _consumer.Dispose();
        });
        closing.Wait(TimeSpan.FromSeconds(3));
    }

    private void Let(KafkaTopicPartition key, KafkaPartition partition)
    {
        _followed.TryRemove(key, out _);
        partition.TailStopped();
        try
        {
            _consumer.IncrementalUnassign([key]);
        }
        catch (KafkaException)
        {
            // Not assigned (its assignment failed): nothing to let go.
        }
    }

    private void Run()
    {
        long nextSweep = Environment.TickCount64 + 1_000;
        var touched = new HashSet<KafkaPartition>();
        while (!_closing)
        {
            try
            {
                // Block for the first record (or end of partition), then take what else is already here, so that a
                // burst wakes each partition's waiters once.
                var result = _consumer.Consume(TimeSpan.FromMilliseconds(100));
                for (int taken = 0; result is not null && taken < 2_000; taken++)
                {
                    Take(result, touched);
                    result = _consumer.Consume(TimeSpan.Zero);
                }
                if (result is not null)
                {
                    Take(result, touched);
                }
            }
            catch (ConsumeException ex)
            {
                Failed(ex);
            }
            catch (KafkaException ex)
            {
                LogTailError(_logger, ex.Error.Reason);
                Thread.Sleep(100);
            }
            foreach (var partition in touched)
            {
                partition.TailObserved();
            }
            touched.Clear();
            if (Environment.TickCount64 >= nextSweep)
            {
                nextSweep = Environment.TickCount64 + 1_000;
                foreach (var (key, partition) in _followed)
                {
                    if (partition.TailIdleFor >= IdleMs)
                    {
                        lock (_assign)
                        {
                            if (_followed.TryGetValue(key, out var followed) && ReferenceEquals(followed, partition) && partition.TailIdleFor >= IdleMs)
                            {
                                Let(key, partition);
                            }
                        }
                    }
                }
            }
        }
    }

    private void Take(ConsumeResult<byte[]?, byte[]?> result, HashSet<KafkaPartition> touched)
    {
        if (!_followed.TryGetValue(result.TopicPartition, out var partition))
        {
            return; // let go meanwhile
        }
        if (result.IsPartitionEOF)
        {
            partition.TailReached(result.Offset.Value);
        }
        else
        {
            partition.TailRecord(result);
        }
        touched.Add(partition);
    }

    /// <summary>
    /// A partition's read failed (its records before the tail's position were deleted, its topic went): it is let go,
    /// and followed again from its end offset as last seen by the next waiter.
    /// </summary>
    private void Failed(ConsumeException ex)
    {
        var key = ex.ConsumerRecord?.TopicPartition;
        if (key is not null && _followed.TryGetValue(key, out var partition))
        {
            Unfollow(partition);
        }
        LogTailError(_logger, ex.Error.Reason);
    }

    [LoggerMessage(EventId = 320, Level = LogLevel.Warning, Message = "The tail reader could not follow {Topic}/{Partition}: {Reason}; waiters there are woken by the metadata rounds")]
    private static partial void LogFollowFailed(ILogger logger, string topic, int partition, string reason);

    [LoggerMessage(EventId = 321, Level = LogLevel.Information, Message = "The tail reader: {Reason}")]
    private static partial void LogTailError(ILogger logger, string reason);
}
