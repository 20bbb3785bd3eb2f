using Gateway.Storage;

namespace Gateway.Log;

/// <summary>
/// What a partition knows of Kafka's idempotent producers, by Kafka's rules: per producer id its epoch and its last
/// five batches (a producer has at most five requests in flight), so a retried batch is answered with its original
/// offsets, a gap in the sequence is refused, and an older epoch is fenced. A producer the partition does not know
/// (never seen, forgotten after <c>window</c>, or its batches deleted before a restart) may start at any sequence,
/// as in Kafka. Bounded: at most <c>capacity</c> producers, the longest idle forgotten first. Rebuilt from the batch
/// headers and recovery checkpoints at start. Thread-safe.
/// </summary>
internal sealed class ProducerStates(int capacity, TimeSpan window, TimeProvider time)
{
    /// <summary>Kafka's max.in.flight.requests.per.connection for idempotence: the batches a retry can repeat.</summary>
    public const int BatchesKept = 5;

    private readonly Lock _lock = new();
    private readonly Dictionary<long, Producer> _producers = [];

    /// <summary>
    /// Checks a batch before it is appended: true with the earlier append's place when it repeats one of the
    /// producer's last batches; false when it may be appended; throws <see cref="InvalidProducerEpochException"/> for
    /// a fenced epoch and <see cref="OutOfOrderSequenceException"/> for a gap.
    /// </summary>
    public bool IsDuplicate(ProducerBatch batch, out IdempotentBatch earlier)
    {
        earlier = default;
        lock (_lock)
        {
            if (!_producers.TryGetValue(batch.ProducerId, out var producer) || Expired(producer))
            {
                return false;
            }
            if (batch.Epoch < producer.Epoch)
            {
                throw new InvalidProducerEpochException(batch.ProducerId, batch.Epoch, producer.Epoch);
            }
            if (batch.Epoch > producer.Epoch)
            {
                // A new epoch starts its sequences again.
                return batch.BaseSequence == 0 ? false : throw new OutOfOrderSequenceException(batch.ProducerId, 0, batch.BaseSequence);
            }
            foreach (var kept in producer.Batches)
            {
                if (kept.Batch.BaseSequence == batch.BaseSequence && kept.Batch.LastSequence == batch.LastSequence)
                {
                    earlier = new IdempotentBatch(kept.BaseOffset, kept.Batch.Count, 0);
                    return true;
                }
            }
            int last = producer.Batches.Last!.Value.Batch.LastSequence;
            if (!ProducerBatch.Follows(last, batch.BaseSequence))
            {
                throw new OutOfOrderSequenceException(batch.ProducerId, last == int.MaxValue ? 0 : last + 1, batch.BaseSequence);
            }
            return false;
        }
    }

    /// <summary>Notes a batch appended at <paramref name="baseOffset"/> (or read back at recovery: no checks then).</summary>
    public void Record(ProducerBatch batch, long baseOffset, long at)
    {
        lock (_lock)
        {
            if (!_producers.TryGetValue(batch.ProducerId, out var producer))
            {
                if (capacity <= 0)
                {
                    return;
                }
                if (_producers.Count >= capacity)
                {
                    ForgetLongestIdle();
                }
                producer = new Producer(batch.Epoch);
                _producers.Add(batch.ProducerId, producer);
            }
            else if (batch.Epoch < producer.Epoch)
            {
                return; // a fenced producer's batch read back at recovery: the newer epoch stands
            }
            if (batch.Epoch > producer.Epoch)
            {
                producer.Epoch = batch.Epoch;
                producer.Batches.Clear();
            }
            producer.Batches.AddLast(new KeptBatch(batch, baseOffset));
            if (producer.Batches.Count > BatchesKept)
            {
                producer.Batches.RemoveFirst();
            }
            producer.LastAppendAt = at;
        }
    }

    /// <summary>The kept batches that end at or below <paramref name="endOffset"/>, oldest first per producer, of producers still in the window.</summary>
    public List<KeptBatch> Snapshot(long endOffset)
    {
        lock (_lock)
        {
            var batches = new List<KeptBatch>();
            foreach (var producer in _producers.Values)
            {
                if (Expired(producer))
                {
                    continue;
                }
                foreach (var kept in producer.Batches)
                {
                    if (kept.BaseOffset + kept.Batch.Count <= endOffset)
                    {
                        batches.Add(kept);
                    }
                }
            }
            return batches;
        }
    }

    private bool Expired(Producer producer) => time.GetUtcNow().ToUnixTimeMilliseconds() - producer.LastAppendAt > window.TotalMilliseconds;

    private void ForgetLongestIdle()
    {
        long oldestId = 0;
        long oldestAt = long.MaxValue;
        foreach (var (id, producer) in _producers)
        {
            if (producer.LastAppendAt < oldestAt)
            {
                (oldestId, oldestAt) = (id, producer.LastAppendAt);
            }
        }
        _producers.Remove(oldestId);
    }

    private sealed class Producer(short epoch)
    {
        public short Epoch { get; set; } = epoch;

        public long LastAppendAt { get; set; }

        public LinkedList<KeptBatch> Batches { get; } = new();
    }
}

/// <summary>A Kafka idempotent producer's batch a partition keeps: its header's fields and where it went.</summary>
internal readonly record struct KeptBatch(ProducerBatch Batch, long BaseOffset);
