using Confluent.Kafka;

namespace Gateway.Storage.Kafka;

/// <summary>
/// The most recent records of a followed partition, as the tail reader received them: every offset from
/// <see cref="Start"/> to <see cref="Next"/> (exclusive) is either here or does not exist (a transaction's marker, a
/// compacted record). At most <c>capacity</c> records and <see cref="MaxBytes"/> bytes; the oldest go first.
/// </summary>
internal sealed class TailBuffer(int capacity)
{
    public const long MaxBytes = 8L * 1024 * 1024;

    private readonly Lock _lock = new();
    private readonly List<ConsumeResult<byte[]?, byte[]?>> _records = [];
    private int _head; // the first kept record's index (dropped ones are removed in bulk)
    private long _bytes;

    /// <summary>The first offset covered; -1 while the partition is not followed.</summary>
    public long Start { get; private set; } = -1;

    /// <summary>One past the last offset covered: where the tail reader is.</summary>
    public long Next { get; private set; } = -1;

    public void Reset(long offset)
    {
        lock (_lock)
        {
            _records.Clear();
            _head = 0;
            _bytes = 0;
            Start = offset;
            Next = offset;
        }
    }

    public void Clear() => Reset(-1);

    public void Add(ConsumeResult<byte[]?, byte[]?> result)
    {
        long offset = result.Offset.Value;
        lock (_lock)
        {
            if (Start < 0 || offset < Next)
            {
                return; // not followed any more, or read again after a reassignment
            }
            _records.Add(result);
            _bytes += SizeOf(result);
            Next = offset + 1;
            while (_records.Count - _head > capacity || (_bytes > MaxBytes && _records.Count - _head > 1))
            {
                var dropped = _records[_head++];
                _bytes -= SizeOf(dropped);
                Start = dropped.Offset.Value + 1;
            }
            if (_head >= capacity)
            {
                _records.RemoveRange(0, _head);
                _head = 0;
            }
        }
    }

    /// <summary>The tail reader reached <paramref name="end"/>: offsets up to it hold no record beyond those here.</summary>
    public void AdvanceTo(long end)
    {
        lock (_lock)
        {
            if (Start >= 0 && end > Next)
            {
                Next = end;
            }
        }
    }

    /// <summary>
    /// The records from <paramref name="offset"/> on, within the limits (at least one), when the buffer covers the
    /// offset; an empty list when the offset is where the tail reader is; null when the cluster must be asked.
    /// </summary>
    public List<ConsumeResult<byte[]?, byte[]?>>? TryRead(long offset, int maxRecords, int maxBytes)
    {
        lock (_lock)
        {
            if (Start < 0 || offset < Start || offset > Next)
            {
                return null;
            }
            var results = new List<ConsumeResult<byte[]?, byte[]?>>();
            long bytes = 0;
            for (int i = First(offset); i < _records.Count; i++)
            {
                var result = _records[i];
                long size = SizeOf(result);
                if (results.Count >= maxRecords || (results.Count > 0 && bytes + size > maxBytes))
                {
                    break;
                }
                results.Add(result);
                bytes += size;
            }
            return results;
        }
    }

    /// <summary>The index of the first kept record at or after <paramref name="offset"/> (offsets ascend).</summary>
    private int First(long offset)
    {
        int low = _head, high = _records.Count;
        while (low < high)
        {
            int middle = (low + high) >>> 1;
            if (_records[middle].Offset.Value < offset)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }
        return low;
    }

    private static long SizeOf(ConsumeResult<byte[]?, byte[]?> result) => (result.Message.Key?.Length ?? 0) + (result.Message.Value?.Length ?? 0) + 16;
}
