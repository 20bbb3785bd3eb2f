using Confluent.Kafka;
using Gateway.Storage.Records;
using KafkaTopicPartition = Confluent.Kafka.TopicPartition;

namespace Gateway.Storage.Kafka;

/// <summary>
/// One partition of a topic on the cluster. Its begin and end offsets are the cluster's watermarks as last seen
/// (after a produce, a read, a metadata round, or the tail reader's progress); appends go through the node's shared
/// producers. Waiters (long-polls, SSE streams) share one signal per partition; while anyone waits, the node's tail
/// reader (<see cref="KafkaTail"/>) follows the partition, moves its end offset on and keeps its recent records, from
/// which reads of the tail are answered without asking the cluster; other reads go through the pooled readers.
/// </summary>
internal sealed class KafkaPartition(KafkaLogStorage storage, string topic, int partition) : IPartition
{
    private readonly KafkaTopicPartition _topicPartition = new(topic, partition);
    private readonly Lock _enqueue = new(); // held while one request's records are queued (no await inside)
    private readonly Lock _signalLock = new();
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _begin;
    private long _end;
    private readonly TailBuffer _tail = new(storage.Options.TailRecordsPerPartition);
    private int _following; // the tail reader follows this partition
    private long _lastInterest = Environment.TickCount64; // when someone last waited here or read the tail buffer
    private int _handedOut; // the current signal was given to a waiter: someone waits until it fires
    private volatile bool _removed; // the topic was deleted (here or on the cluster): waiters are answered at once

    public string Topic { get; } = topic;

    public int Partition { get; } = partition;

    public long BeginOffset => Volatile.Read(ref _begin);

    public long EndOffset => Volatile.Read(ref _end);

    public Exception? Failure => null;

    /// <summary>Not known to a client of the cluster without reading the log directories: 0.</summary>
    public long SizeBytes => 0;

    public long SizeOnDiskBytes => 0;

    /// <summary>Not looked up (it would be a read of the cluster): null.</summary>
    public long? OldestTimestamp() => null;

    /// <summary>Takes the watermarks the cluster answered: the begin offset moves either way (retention, delete-records), the end only forward.</summary>
    internal void Observe(long begin, long end)
    {
        Volatile.Write(ref _begin, Math.Max(0, begin));
        long seen = Volatile.Read(ref _end);
        while (end > seen)
        {
            long previous = Interlocked.CompareExchange(ref _end, end, seen);
            if (previous == seen)
            {
                Signal();
                return;
            }
            seen = previous;
        }
    }

    public async ValueTask<long> AppendAsync(RecordBatchBuilder batch, Acks acks, long? expectedEndOffset = null, CancellationToken cancellationToken = default)
    {
        if (expectedEndOffset is not null)
        {
            throw new NotSupportedByBackendException("conditionalAppend", "The kafka backend cannot append at an expected offset: Kafka has no conditional produce.");
        }
        var messages = RecordCodec.ToMessages(batch);
        var producer = acks == Acks.Disk ? storage.Clients.Durable : storage.Clients.Fast;
        var deliveries = new Deliveries(messages.Count);
        // One request's records are queued together, in order, so that this node's producer sends them as one run.
        try
        {
            lock (_enqueue)
            {
                for (int i = 0; i < messages.Count; i++)
                {
                    producer.Produce(_topicPartition, messages[i], deliveries.Handler(i));
                }
            }
        }
        catch (KafkaException ex)
        {
            throw KafkaErrors.Map(ex.Error, Topic, Partition, "produce");
        }
        await deliveries.Completed.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (deliveries.Error is { } error)
        {
            throw KafkaErrors.Map(error, Topic, Partition, "produce");
        }
        var results = deliveries.Offsets;
        long first = results[0];
        if (results[^1] - first != results.Length - 1)
        {
            // Another writer's records landed in between (another node, or a Kafka client): each record's own offset is told.
            batch.AppendedOffsets = results;
        }
        if (acks == Acks.Disk)
        {
            // acks=all is answered once the in-sync replicas have the records: the high watermark has passed them. An
            // acks=1 answer comes from the leader alone, before that: readers see such records once the cluster's
            // watermark does (as on the embedded backend, where acks=memory records are read after the background flush).
            Observe(BeginOffset, results.Max() + 1);
        }
        return first;
    }

    public async ValueTask<RecordSet> ReadAsync(long offset, int maxRecords, int maxBytes, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRecords);
        // The tail reader's buffer covers the offset: answered from memory, as every SSE stream of the tail is. (When
        // the buffer has nothing there yet although the end is past the offset — an append here was answered before
        // the tail reader received it — the cluster is asked.)
        if (Volatile.Read(ref _following) == 1 && _tail.TryRead(offset, maxRecords, maxBytes) is { } recent && (recent.Count > 0 || offset >= EndOffset))
        {
            Volatile.Write(ref _lastInterest, Environment.TickCount64);
            long begin = BeginOffset;
            if (offset < begin)
            {
                throw new OffsetOutOfRangeException(offset, begin, EndOffset);
            }
            long end = Math.Max(EndOffset, recent.Count == 0 ? offset : recent[^1].Offset.Value + 1);
            return RecordCodec.ToRecordSet(recent, offset, begin, end);
        }
        var clients = storage.Clients;
        return await clients.WithReaderAsync(reader =>
        {
            var marks = Watermarks(reader);
            if (offset < marks.Low.Value || offset > marks.High.Value)
            {
                throw new OffsetOutOfRangeException(offset, marks.Low.Value, marks.High.Value);
            }
            var results = new List<ConsumeResult<byte[]?, byte[]?>>();
            if (offset < marks.High.Value)
            {
                reader.Assign(new TopicPartitionOffset(_topicPartition, offset));
                long bytes = 0;
                var deadline = DateTime.UtcNow + clients.RequestTimeout;
                while (results.Count < maxRecords && DateTime.UtcNow < deadline)
                {
                    ConsumeResult<byte[]?, byte[]?>? result;
                    try
                    {
                        result = reader.Consume(deadline - DateTime.UtcNow);
                    }
                    catch (ConsumeException ex)
                    {
                        throw KafkaErrors.Map(ex.Error, Topic, Partition, "fetch");
                    }
                    if (result is null || result.IsPartitionEOF)
                    {
                        break;
                    }
                    long size = (result.Message.Key?.Length ?? 0) + (result.Message.Value?.Length ?? 0) + 16;
                    if (results.Count > 0 && bytes + size > maxBytes)
                    {
                        break;
                    }
                    results.Add(result);
                    bytes += size;
                    if (result.Offset.Value + 1 >= marks.High.Value)
                    {
                        break; // everything committed when the read began
                    }
                }
                if (results.Count == 0)
                {
                    throw new StorageFailureException($"Reading {Topic}/{Partition} at offset {offset} from the cluster timed out.");
                }
            }
            return RecordCodec.ToRecordSet(results, offset, marks.Low.Value, marks.High.Value);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The cluster's watermarks, asked now (the node's view moves on with them).</summary>
    public async ValueTask<(long Begin, long End)> CurrentOffsetsAsync(CancellationToken cancellationToken = default) =>
        await storage.Clients.WithReaderAsync(reader =>
        {
            var marks = Watermarks(reader);
            return (marks.Low.Value, marks.High.Value);
        }, cancellationToken).ConfigureAwait(false);

    public async ValueTask<long> OffsetForTimestampAsync(long timestamp, CancellationToken cancellationToken = default) =>
        await storage.Clients.WithReaderAsync(reader =>
        {
            try
            {
                var found = reader.OffsetsForTimes([new TopicPartitionTimestamp(_topicPartition, new Timestamp(timestamp, TimestampType.CreateTime))], storage.Clients.RequestTimeout);
                long offset = found[0].Offset.Value;
                return offset >= 0 ? offset : Watermarks(reader).High.Value;
            }
            catch (KafkaException ex)
            {
                throw KafkaErrors.Map(ex.Error, Topic, Partition, "offset lookup");
            }
        }, cancellationToken).ConfigureAwait(false);

    public async Task<long> DeleteRecordsBeforeAsync(long offset, CancellationToken cancellationToken = default)
    {
        if (offset < 0)
        {
            // Never passed on: Kafka reads -1 as "up to the high watermark", which would delete every record.
            throw new OffsetOutOfRangeException(offset, BeginOffset, EndOffset);
        }
        try
        {
            var deleted = await storage.Clients.Admin.DeleteRecordsAsync(
                [new TopicPartitionOffset(_topicPartition, offset)],
                new Confluent.Kafka.Admin.DeleteRecordsOptions { OperationTimeout = storage.Clients.RequestTimeout, RequestTimeout = storage.Clients.RequestTimeout }).ConfigureAwait(false);
            long low = deleted[0].Offset.Value;
            Observe(low, EndOffset);
            return low;
        }
        catch (Confluent.Kafka.Admin.DeleteRecordsException ex)
        {
            var error = ex.Results[0].Error;
            if (error.Code == ErrorCode.OffsetOutOfRange)
            {
                throw new OffsetOutOfRangeException(offset, BeginOffset, EndOffset);
            }
            throw KafkaErrors.Map(error, Topic, Partition, "delete-records");
        }
        catch (KafkaException ex)
        {
            throw KafkaErrors.Map(ex.Error, Topic, Partition, "delete-records");
        }
    }

    public Task NextCommit(long offset)
    {
        Task signal;
        lock (_signalLock)
        {
            signal = _signal.Task;
        }
        if (EndOffset > offset || storage.Closed || _removed)
        {
            return Task.CompletedTask;
        }
        Volatile.Write(ref _handedOut, 1);
        Volatile.Write(ref _lastInterest, Environment.TickCount64);
        if (Volatile.Read(ref _following) == 0)
        {
            storage.Tail.Follow(this, EndOffset);
        }
        return signal;
    }

    public async ValueTask<bool> WaitForRecordAsync(long offset, CancellationToken cancellationToken)
    {
        while (EndOffset <= offset)
        {
            if (storage.Closed || _removed)
            {
                return false;
            }
            await NextCommit(offset).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>What an earlier attempt of a key appended here, as the groups log has it (its claim came first).</summary>
    public bool TryGetIdempotent(long producerId, out IdempotentBatch batch)
    {
        if (storage.Coordination is { } coordination)
        {
            return coordination.TryGetIdempotent(Topic, Partition, producerId, out batch);
        }
        batch = default;
        return false;
    }

    /// <summary>Every acknowledged record is already where acks put it (acks=all: on the in-sync replicas).</summary>
    public Task WaitForCommittedAsync(long endOffset, CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <summary>The topic is gone: every waiter is answered now and every later wait at once (false: nothing will come).</summary>
    internal void Remove()
    {
        _removed = true;
        storage.Tail.Unfollow(this);
        Signal();
    }

    /// <summary>How long nobody has waited here or read the tail buffer (0 while someone waits).</summary>
    internal long TailIdleFor => Volatile.Read(ref _handedOut) == 1 ? 0 : Environment.TickCount64 - Volatile.Read(ref _lastInterest);

    /// <summary>The tail reader follows the partition from <paramref name="offset"/> on.</summary>
    internal void TailStarted(long offset)
    {
        _tail.Reset(offset);
        Volatile.Write(ref _lastInterest, Environment.TickCount64);
        Volatile.Write(ref _following, 1);
    }

    internal void TailStopped()
    {
        Volatile.Write(ref _following, 0);
        _tail.Clear();
    }

    internal void TailRecord(ConsumeResult<byte[]?, byte[]?> result) => _tail.Add(result);

    internal void TailReached(long end) => _tail.AdvanceTo(end);

    /// <summary>After a burst of the tail reader's records: the end offset moves on, waking every waiter once.</summary>
    internal void TailObserved()
    {
        long next = _tail.Next;
        if (next > 0)
        {
            Observe(BeginOffset, next);
        }
    }

    internal void Signal()
    {
        TaskCompletionSource fired;
        lock (_signalLock)
        {
            fired = _signal;
            _signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _handedOut, 0);
        }
        fired.TrySetResult();
    }

    private WatermarkOffsets Watermarks(IConsumer<byte[]?, byte[]?> reader)
    {
        try
        {
            var marks = storage.Clients.QueryWatermarks(reader, _topicPartition);
            Observe(marks.Low.Value, marks.High.Value);
            return marks;
        }
        catch (KafkaException ex)
        {
            throw KafkaErrors.Map(ex.Error, Topic, Partition, "offset lookup");
        }
    }

    /// <summary>The delivery reports of one append's messages: their offsets, the first error, and a task done when all are in.</summary>
    private sealed class Deliveries(int count)
    {
        private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _remaining = count;

        public long[] Offsets { get; } = new long[count];

        public Error? Error { get; private set; }

        public Task Completed => _completed.Task;

        public Action<DeliveryReport<byte[]?, byte[]?>> Handler(int index) => report =>
        {
            if (report.Error.IsError)
            {
                Error ??= report.Error;
            }
            else
            {
                Offsets[index] = report.Offset.Value;
            }
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                _completed.TrySetResult();
            }
        };
    }
}
