using System.Buffers;
using System.Buffers.Binary;
using FASTER.core;
using Gateway.Storage.Records;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log.Device;

/// <summary>
/// Where a partition's log really ends, found at recovery from its segment files. A commit makes its data durable
/// before it returns, but writes the commit record through the page cache (<see cref="CommitRecord"/>): after a power
/// cut the record may name an earlier tail than data that was on disk and acknowledged. As Kafka recovers from its
/// recovery point, the entries past the recorded tail are read and kept while each one checks — FasterLog's entry
/// checksum, the batch's CRC-32C, and its base offset continuing the offsets densely — up to the first that does not.
/// Past that end the files are then cut (and synced): bytes a crash left there could otherwise, after later appends
/// and another crash, be taken for entries that follow them.
/// </summary>
internal sealed class LogTail : IDisposable
{
    // FasterLog's entry header with LogChecksumType.PerEntry: an XOR checksum of the length and the payload (8
    // bytes), then the payload's length (4). Entries are aligned to 4 bytes and never cross a page: past the last
    // entry that fits, FasterLog leaves the page's end zero and goes on at the next page.
    internal const int HeaderSize = 12;

    private const int ZerosLeft = 64 << 10; // past the end, up to this many bytes of zeros are read and left, not cut

    private readonly string _baseName;
    private readonly int _pageBits;
    private readonly int _segmentBits;
    private readonly Dictionary<long, SafeFileHandle?> _files = [];

    public LogTail(string baseName, int pageBits, int segmentBits)
    {
        _baseName = baseName;
        _pageBits = pageBits;
        _segmentBits = segmentBits;
    }

    /// <summary>
    /// Reads the entries from <paramref name="address"/> (the end of an entry, or of the log), the first at
    /// <paramref name="nextOffset"/>, while they check. Returns the end of the last one and the offset after it.
    /// </summary>
    public (long End, long NextOffset) Find(long address, long nextOffset)
    {
        long pageSize = 1L << _pageBits;
        while (true)
        {
            if (TryEntry(address, nextOffset, out long after, out long next))
            {
                (address, nextOffset) = (after, next);
                continue;
            }
            // Zeros past a page's last entry: the log goes on at the next page, if an entry that checks is there.
            long nextPage = (address | (pageSize - 1)) + 1;
            if ((address & (pageSize - 1)) != 0 && IsPagePadding(address) && TryEntry(nextPage, nextOffset, out after, out next))
            {
                (address, nextOffset) = (after, next);
                continue;
            }
            return (address, nextOffset);
        }
    }

    /// <summary>
    /// Cuts the files at <paramref name="end"/>: the segment that holds it is shortened to it, later segments to
    /// nothing (not deleted, so no directory sync is needed for the cut to last). Each file cut is synced. A few zeros
    /// past the end (the rest of the last sector written) are left.
    /// </summary>
    public void CutAfter(long end)
    {
        long segment = end >> _segmentBits;
        long offset = end & ((1L << _segmentBits) - 1);
        foreach (string path in Directory.EnumerateFiles(Path.GetDirectoryName(Path.GetFullPath(_baseName))!, Path.GetFileName(_baseName) + ".*"))
        {
            if (!long.TryParse(Path.GetExtension(path).AsSpan(1), out long number) || number < segment)
            {
                continue;
            }
            long length = number == segment ? offset : 0;
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            long excess = RandomAccess.GetLength(handle) - length;
            if (excess > 0 && (excess > ZerosLeft || !AllZero(handle, length, (int)excess)))
            {
                RandomAccess.SetLength(handle, length);
                RandomAccess.FlushToDisk(handle);
            }
        }
    }

    private static bool AllZero(SafeFileHandle handle, long position, int length)
    {
        byte[] bytes = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var span = bytes.AsSpan(0, length);
            return RandomAccess.Read(handle, span, position) == length && !span.ContainsAnyExcept((byte)0);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>Makes durable whatever of the log's segment files <see cref="Find"/> read sits in the page cache.</summary>
    public void Sync()
    {
        foreach (var handle in _files.Values)
        {
            if (handle is not null)
            {
                RandomAccess.FlushToDisk(handle);
            }
        }
    }

    public void Dispose()
    {
        foreach (var handle in _files.Values)
        {
            handle?.Dispose();
        }
        _files.Clear();
    }

    /// <summary>An entry at <paramref name="address"/> that checks and holds the batch at <paramref name="expectedOffset"/>.</summary>
    private bool TryEntry(long address, long expectedOffset, out long after, out long nextOffset)
    {
        after = address;
        nextOffset = expectedOffset;
        long pageSize = 1L << _pageBits;
        long inPage = address & (pageSize - 1);
        if (inPage + HeaderSize > pageSize)
        {
            return false;
        }
        Span<byte> header = stackalloc byte[HeaderSize];
        if (Read(address, header) < HeaderSize)
        {
            return false;
        }
        int length = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        long size = HeaderSize + ((length + 3L) & ~3L);
        if (length <= 0 || inPage + size > pageSize)
        {
            return false;
        }
        byte[] entry = ArrayPool<byte>.Shared.Rent(HeaderSize + length);
        try
        {
            var span = entry.AsSpan(0, HeaderSize + length);
            if (Read(address, span) < span.Length || !ChecksumHolds(span))
            {
                return false;
            }
            var payload = span[HeaderSize..];
            if (!RecordBatch.TryValidate(payload, out _))
            {
                return false;
            }
            var batch = new RecordBatch(entry.AsMemory(HeaderSize, length));
            if (batch.BaseOffset != expectedOffset)
            {
                return false;
            }
            after = address + size;
            nextOffset = batch.NextOffset;
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(entry);
        }
    }

    private static unsafe bool ChecksumHolds(ReadOnlySpan<byte> entry)
    {
        fixed (byte* start = entry)
        {
            return Utility.XorBytes(start + 8, entry.Length - 8) == BinaryPrimitives.ReadUInt64LittleEndian(entry);
        }
    }

    /// <summary>Whether <paramref name="address"/> is in the zeros FasterLog leaves at the end of a page.</summary>
    private bool IsPagePadding(long address)
    {
        long pageSize = 1L << _pageBits;
        long inPage = address & (pageSize - 1);
        if (inPage + HeaderSize > pageSize)
        {
            return true; // too little room left for any entry
        }
        Span<byte> header = stackalloc byte[HeaderSize];
        return Read(address, header) == HeaderSize && BinaryPrimitives.ReadInt32LittleEndian(header[8..]) == 0;
    }

    /// <summary>Reads at a log address from its segment file; returns the bytes read (fewer at the file's end).</summary>
    private int Read(long address, Span<byte> destination)
    {
        long segment = address >> _segmentBits;
        if (!_files.TryGetValue(segment, out var handle))
        {
            string path = $"{_baseName}.{segment}";
            handle = File.Exists(path) ? File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite) : null;
            _files[segment] = handle;
        }
        if (handle is null)
        {
            return 0;
        }
        long position = address & ((1L << _segmentBits) - 1);
        int total = 0;
        while (total < destination.Length)
        {
            int read = RandomAccess.Read(handle, destination[total..], position + total);
            if (read == 0)
            {
                break;
            }
            total += read;
        }
        return total;
    }
}
