using System.Buffers;
using System.Buffers.Binary;
using Gateway.Log.Device;
using Gateway.Storage.Records;

namespace Gateway.Log;

/// <summary>
/// Reads committed batches straight from the segment files, for large reads of what has left FasterLog's memory (a
/// Kafka consumer catching up). FasterLog's own iterator loads whole pages into a frame allocated and cleared for
/// every scan, checks its XOR checksum and copies each entry out once more; here a run of the log is read once into
/// pooled memory and the batches are handed out as slices of it, checked by their CRC-32C as every read checks them.
/// </summary>
/// <remarks>
/// Only committed addresses are read: a commit completes after its pages are written, so they are in the files. The
/// entries are FasterLog's (per-entry checksum): an 8-byte checksum, a 4-byte length (negative for a commit record),
/// the payload, padding to 4 bytes; an entry never crosses a page, and zeros end a page early.
/// </remarks>
internal sealed class StoredScanner : IDisposable
{
    private const int EntryHeader = 12;

    private readonly SegmentFileDevice _device;
    private readonly int _pageBits;
    private readonly long _segmentSize;
    private readonly long _until;
    private readonly long _committed;
    private readonly int _chunkBytes;
    private readonly Func<string, Exception> _damaged;
    private long _next;
    private Chunk? _chunk;
    private long _chunkStart; // log address of _chunk's first byte
    private int _chunkLength;

    /// <summary>A scan of the entries that start in [<paramref name="from"/>, <paramref name="until"/>), all below <paramref name="committed"/>.</summary>
    public StoredScanner(SegmentFileDevice device, int pageBits, int segmentBits, long from, long until, long committed, int chunkBytes, Func<string, Exception> damaged)
    {
        _committed = committed;
        _device = device;
        _pageBits = pageBits;
        _segmentSize = 1L << segmentBits;
        _next = from;
        _until = until;
        // At least a page, so that any entry (never more than a page, and never across one) fits a chunk whole.
        _chunkBytes = Math.Max(chunkBytes, 1 << pageBits);
        _damaged = damaged;
    }

    /// <summary>The address the next batch is looked for at: where a scan through FasterLog continues after this one.</summary>
    public long NextAddress => _next;

    /// <summary>The next batch below the end address and its address; the caller owns (and disposes) <paramref name="owner"/>.</summary>
    public bool TryNext(out IMemoryOwner<byte> owner, out RecordBatch batch, out long address)
    {
        while (_next < _until)
        {
            long pageSize = 1L << _pageBits;
            long inPage = _next & (pageSize - 1);
            if (pageSize - inPage < EntryHeader)
            {
                _next += pageSize - inPage; // too little room left for an entry: the page ends here
                continue;
            }
            if (!Loaded(_next, EntryHeader))
            {
                Load(_next);
            }
            var header = _chunk!.Span.Slice((int)(_next - _chunkStart), EntryHeader);
            int length = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
            if (length == 0)
            {
                if (inPage == 0)
                {
                    throw _damaged($"the page at address {_next} is empty");
                }
                _next += pageSize - inPage; // zeros after the last entry of a page
                continue;
            }
            int payload = Math.Abs(length);
            int size = EntryHeader + ((payload + 3) & ~3);
            if (length == int.MinValue || inPage + size > pageSize || _next + size > _committed)
            {
                throw _damaged($"entry at address {_next} claims {length} bytes");
            }
            if (!Loaded(_next, size))
            {
                Load(_next);
            }
            address = _next;
            _next += size;
            if (length < 0)
            {
                continue; // a commit record (not written by plain commits, skipped as FasterLog skips it)
            }
            var memory = _chunk!.Memory.Slice((int)(address - _chunkStart) + EntryHeader, payload);
            if (!RecordBatch.TryValidate(memory.Span, out string error))
            {
                throw _damaged($"entry at address {address}: {error}");
            }
            owner = _chunk.Share(memory);
            batch = new RecordBatch(memory);
            return true;
        }
        owner = null!;
        batch = default;
        address = _next;
        return false;
    }

    public void Dispose()
    {
        _chunk?.Release();
        _chunk = null;
    }

    private bool Loaded(long address, int bytes) =>
        _chunk is not null && address >= _chunkStart && address + bytes <= _chunkStart + _chunkLength;

    /// <summary>Reads the next run of the log from <paramref name="address"/>: up to a chunk, within one segment.</summary>
    private void Load(long address)
    {
        long segmentEnd = (address / _segmentSize + 1) * _segmentSize;
        int length = (int)Math.Min(Math.Min(_committed, segmentEnd) - address, _chunkBytes);
        _chunk?.Release();
        _chunk = new Chunk(length);
        _chunkStart = address;
        int read = _device.ReadStored(address, _chunk.Memory.Span[..length]);
        if (read < length)
        {
            throw _damaged($"the log file ends at address {address + read}, the committed log at {_committed}");
        }
        _chunkLength = length;
    }

    /// <summary>One pooled run of the log, returned to the pool when the scanner and every batch handed out are done with it.</summary>
    private sealed class Chunk
    {
        private readonly byte[] _array;
        private int _references = 1;

        public Chunk(int length)
        {
            _array = ArrayPool<byte>.Shared.Rent(length);
        }

        public Memory<byte> Memory => _array;

        public Span<byte> Span => _array;

        public IMemoryOwner<byte> Share(Memory<byte> slice)
        {
            Interlocked.Increment(ref _references);
            return new Slice(this, slice);
        }

        public void Release()
        {
            if (Interlocked.Decrement(ref _references) == 0)
            {
                ArrayPool<byte>.Shared.Return(_array);
            }
        }

        private sealed class Slice(Chunk chunk, Memory<byte> memory) : IMemoryOwner<byte>
        {
            private Chunk? _chunk = chunk;

            public Memory<byte> Memory => memory;

            public void Dispose() => Interlocked.Exchange(ref _chunk, null)?.Release();
        }
    }
}
