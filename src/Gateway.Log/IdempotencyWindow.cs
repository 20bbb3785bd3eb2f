using Gateway.Storage;

namespace Gateway.Log;

/// <summary>
/// The idempotent appends a partition remembers: the most recent <c>capacity</c> stamps, each for at most
/// <c>window</c>. Bounded in memory; rebuilt from the batch headers on start. Thread-safe.
/// </summary>
internal sealed class IdempotencyWindow(int capacity, TimeSpan window, TimeProvider time)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, (IdempotentBatch Batch, long RememberedAt)> _byProducer = [];
    private readonly Queue<long> _order = new();

    public void Remember(IdempotencyStamp stamp, long baseOffset, int count, long rememberedAt)
    {
        if (capacity <= 0)
        {
            return;
        }
        lock (_lock)
        {
            if (!_byProducer.ContainsKey(stamp.ProducerId))
            {
                _order.Enqueue(stamp.ProducerId);
            }
            _byProducer[stamp.ProducerId] = (new IdempotentBatch(baseOffset, count, stamp.RequestHash), rememberedAt);
            while (_order.Count > capacity)
            {
                _byProducer.Remove(_order.Dequeue());
            }
        }
    }

    /// <summary>The remembered batches that end at or below <paramref name="endOffset"/> and are still in the window, oldest first.</summary>
    public List<RememberedBatch> Snapshot(long endOffset)
    {
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_lock)
        {
            var batches = new List<RememberedBatch>(_order.Count);
            foreach (long producerId in _order)
            {
                var (batch, rememberedAt) = _byProducer[producerId];
                if (batch.BaseOffset + batch.Count <= endOffset && now - rememberedAt <= window.TotalMilliseconds)
                {
                    batches.Add(new RememberedBatch(new IdempotencyStamp(producerId, batch.RequestHash), batch.BaseOffset, batch.Count));
                }
            }
            return batches;
        }
    }

    public bool TryGet(long producerId, out IdempotentBatch batch)
    {
        lock (_lock)
        {
            if (_byProducer.TryGetValue(producerId, out var entry)
                && time.GetUtcNow().ToUnixTimeMilliseconds() - entry.RememberedAt <= window.TotalMilliseconds)
            {
                batch = entry.Batch;
                return true;
            }
        }
        batch = default;
        return false;
    }
}
