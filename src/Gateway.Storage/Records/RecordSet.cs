using System.Buffers;

namespace Gateway.Storage.Records;

/// <summary>
/// The records a fetch returns: whole stored batches, of which only offsets in [<see cref="StartOffset"/>,
/// <see cref="NextOffset"/>) are part of the answer. Owns pooled buffers: dispose it after use. A compressed batch
/// is decompressed the first time its records are walked (HTTP, SSE), never for <see cref="BatchAt"/> (a Kafka fetch).
/// </summary>
public sealed class RecordSet : IDisposable
{
    private readonly List<(IMemoryOwner<byte> Owner, RecordBatch Batch)> _batches;

    internal RecordSet(List<(IMemoryOwner<byte> Owner, RecordBatch Batch)> batches, long startOffset, long nextOffset, int count, long bytes, long beginOffset, long endOffset)
    {
        _batches = batches;
        StartOffset = startOffset;
        NextOffset = nextOffset;
        Count = count;
        Bytes = bytes;
        BeginOffset = beginOffset;
        EndOffset = endOffset;
    }

    /// <summary>First offset of the answer.</summary>
    public long StartOffset { get; }

    /// <summary>The offset to fetch next: one past the last record returned, or the start offset if none was.</summary>
    public long NextOffset { get; }

    /// <summary>Records in the answer.</summary>
    public int Count { get; }

    /// <summary>Encoded bytes of the records in the answer, as <c>maxBytes</c> counts them.</summary>
    public long Bytes { get; }

    /// <summary>The partition's begin offset when the read happened.</summary>
    public long BeginOffset { get; }

    /// <summary>The partition's end offset (high watermark) when the read happened.</summary>
    public long EndOffset { get; }

    internal static RecordSet Empty(long offset, long beginOffset, long endOffset) => new([], offset, offset, 0, 0, beginOffset, endOffset);

    /// <summary>The stored batches the set holds, as they are (a Kafka fetch sends them without re-encoding); the first may start before <see cref="StartOffset"/>.</summary>
    public int BatchCount => _batches.Count;

    public RecordBatch BatchAt(int index) => _batches[index].Batch;

    public Enumerator GetEnumerator() => new(this);

    /// <summary>The batch with its records readable, decompressed once and kept with the set's buffers.</summary>
    private RecordBatch ReadableAt(int index)
    {
        var (owner, batch) = _batches[index];
        if (batch.RecordsReadable)
        {
            return batch;
        }
        var readable = batch.Readable(out var decompressed);
        _batches[index] = (new Owners(owner, decompressed!), readable);
        return readable;
    }

    public void Dispose()
    {
        foreach (var (owner, _) in _batches)
        {
            owner.Dispose();
        }
        _batches.Clear();
    }

    /// <summary>A stored batch's buffer and its decompressed records', released together.</summary>
    private sealed class Owners(IMemoryOwner<byte> stored, IMemoryOwner<byte> decompressed) : IMemoryOwner<byte>
    {
        public Memory<byte> Memory => stored.Memory;

        public void Dispose()
        {
            stored.Dispose();
            decompressed.Dispose();
        }
    }

    /// <summary>Walks the records of the answer in offset order.</summary>
    public ref struct Enumerator
    {
        private readonly RecordSet _set;
        private int _batchIndex;
        private RecordBatch.Enumerator _records;
        private bool _inBatch;

        internal Enumerator(RecordSet set)
        {
            _set = set;
            _batchIndex = -1;
        }

        public LogRecord Current { get; private set; }

        public bool MoveNext()
        {
            while (true)
            {
                if (_inBatch)
                {
                    while (_records.MoveNext())
                    {
                        var record = _records.Current;
                        if (record.Offset >= _set.NextOffset)
                        {
                            return false;
                        }
                        if (record.Offset >= _set.StartOffset)
                        {
                            Current = record;
                            return true;
                        }
                    }
                    _inBatch = false;
                }
                if (++_batchIndex >= _set._batches.Count)
                {
                    return false;
                }
                _records = _set.ReadableAt(_batchIndex).GetEnumerator();
                _inBatch = true;
            }
        }
    }
}
