using System.Buffers;
using System.Globalization;
using FASTER.core;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.Log;

// The partition's reads: committed records by offset and by timestamp, and the waits for the next one.
public sealed partial class PartitionLog
{
    /// <summary>
    /// Reads committed records from <paramref name="offset"/>: at most <paramref name="maxRecords"/>, and no more than
    /// <paramref name="maxBytes"/> of encoded records unless the first record alone is larger (so a reader always
    /// progresses). An offset outside [<see cref="BeginOffset"/>, <see cref="EndOffset"/>] throws
    /// <see cref="OffsetOutOfRangeException"/>; at the end offset the answer is empty.
    /// </summary>
    public RecordSet Read(long offset, int maxRecords, int maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRecords);
        ThrowIfUnavailable();
        var committed = Volatile.Read(ref _committed);
        long begin = BeginOffset;
        if (offset < begin || offset > committed.Offset)
        {
            throw new OffsetOutOfRangeException(offset, begin, committed.Offset);
        }
        if (offset == committed.Offset)
        {
            return RecordSet.Empty(offset, begin, committed.Offset); // at the end: answered without opening a log at rest
        }
        using var use = Enter();
        ThrowIfUnavailable();

        var batches = new List<(IMemoryOwner<byte>, RecordBatch)>();
        long next = offset;
        int count = 0;
        long bytes = 0;
        bool full = false;
        long startAddress = _index.FloorAddress(offset, _log!.BeginAddress);
        try
        {
            // What lies a whole memory size below the tail has left FasterLog's pages (any committed address is in the
            // files, so where exactly this is decides only which way is faster).
            long inFiles = Math.Min(_log.TailAddress - (1L << _memorySizeBits), committed.Address);
            if (maxBytes >= LargeReadBytes && _device is not null && startAddress < inFiles)
            {
                // A large read of what has left memory (a Kafka consumer catching up) reads the files directly.
                using var stored = new StoredScanner(_device, _pageSizeBits, _options.SegmentSizeBits, startAddress, inFiles,
                    committed.Address, Math.Min(maxBytes, StoredChunkBytes), _damaged ??= Damaged);
                while (!full && next < committed.Offset && stored.TryNext(out var owner, out var batch, out long address))
                {
                    Take(owner, batch, address);
                }
                startAddress = stored.NextAddress;
            }
            if (!full && next < committed.Offset)
            {
                var buffering = maxBytes >= LargeReadBytes ? ScanBufferingMode.DoublePageBuffering : ScanBufferingMode.SinglePageBuffering;
                using var scanner = new BatchScanner(_log, startAddress, committed.Address, buffering, _damaged ??= Damaged);
                while (!full && next < committed.Offset && scanner.TryNext(out var owner, out var batch, out long address))
                {
                    Take(owner, batch, address);
                }
            }
        }
        catch (Exception ex) when (ex is FasterException or LogCorruptedException or IOException)
        {
            Dispose(batches);
            if (BeginOffset > offset)
            {
                // The records were deleted while they were read (retention or delete-records truncated the log under
                // the scan, which skipped to the new begin or found their segment gone): the reader lost a race, the
                // log is fine. The begin offset moves before the log is truncated, so such a scan always sees it here.
                throw new OffsetOutOfRangeException(offset, BeginOffset, committed.Offset);
            }
            throw MarkFailed(ex as LogCorruptedException ?? Damaged($"reading at offset {offset} failed: {ex.Message}"));
        }
        catch
        {
            Dispose(batches);
            throw;
        }
        return new RecordSet(batches, offset, next, count, bytes, begin, committed.Offset);

        // Adds a scanned batch's records from the next offset on, as far as the limits allow; sets full when they stop it.
        void Take(IMemoryOwner<byte> owner, RecordBatch batch, long address)
        {
            if (batch.NextOffset <= offset)
            {
                owner.Dispose();
                return;
            }
            batches.Add((owner, batch));
            if (!batch.RecordsReadable)
            {
                // A Kafka producer's compressed batch counts whole, as in Kafka; nothing is decompressed here (a
                // Kafka fetch sends it as it is), only when its records are walked.
                if (batch.BaseOffset > next)
                {
                    throw Damaged($"offset {next} is missing at address {address}, the log continues at {batch.BaseOffset}");
                }
                long available = batch.NextOffset - next;
                if (count >= maxRecords || (count > 0 && bytes + batch.Bytes.Length > maxBytes))
                {
                    full = true;
                    return;
                }
                long take = Math.Min(available, maxRecords - count);
                count += (int)take;
                bytes += batch.Bytes.Length;
                next += take;
                full = take < available;
                return;
            }
            if (batch.BaseOffset == next && count + (batch.NextOffset - next) <= maxRecords && bytes + batch.RecordBytes <= maxBytes)
            {
                // All of it fits: counted from its header (its offsets are dense, its CRC checked), not record by record.
                count += (int)(batch.NextOffset - next);
                bytes += batch.RecordBytes;
                next = batch.NextOffset;
                return;
            }
            foreach (var record in batch)
            {
                if (record.Offset < next)
                {
                    continue;
                }
                if (record.Offset != next)
                {
                    // Offsets are dense: a jump means a batch in between could not be read.
                    throw Damaged($"offset {next} is missing at address {address}, the log continues at {record.Offset}");
                }
                if (count >= maxRecords || (count > 0 && bytes + record.EncodedSize > maxBytes))
                {
                    full = true;
                    return;
                }
                count++;
                bytes += record.EncodedSize;
                next = record.Offset + 1;
            }
        }
    }

    /// <summary>
    /// Completes when a record at <paramref name="offset"/> is committed (true), or when the partition closes (false).
    /// Waiters are woken by the commit that passes them; nothing polls.
    /// </summary>
    public async ValueTask<bool> WaitForRecordAsync(long offset, CancellationToken cancellationToken)
    {
        while (true)
        {
            var next = NextCommit(offset);
            if (next.IsCompleted)
            {
                return EndOffset > offset;
            }
            await next.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The partition's commit signal for a reader at <paramref name="offset"/>: a task that completes at the next
    /// commit (or when the partition fails or closes), already completed when a record at the offset is readable or
    /// the partition is unavailable. It is shared by every reader and cannot be cancelled, so waiting on it costs no
    /// registration of its own: many idle subscribers wait on it beside one cancellation of their own. As with
    /// <see cref="WaitForRecordAsync"/>, appends commit at once while someone waits.
    /// </summary>
    public Task NextCommit(long offset)
    {
        var signal = Volatile.Read(ref _committedSignal);
        if (EndOffset > offset || _closed || Failure is not null)
        {
            return Task.CompletedTask;
        }
        Volatile.Write(ref _tailWaiting, 1);
        return signal.Task;
    }

    /// <summary>The first offset whose record has a timestamp ≥ <paramref name="timestamp"/>, or <see cref="EndOffset"/> if none has.</summary>
    public long OffsetForTimestamp(long timestamp)
    {
        ThrowIfUnavailable();
        var committed = Volatile.Read(ref _committed);
        long begin = BeginOffset;
        lock (_appendLock)
        {
            if (begin >= committed.Offset || _maxTimestamp < timestamp)
            {
                return committed.Offset; // no record that late: answered without opening a log at rest
            }
        }
        using var use = Enter();
        ThrowIfUnavailable();
        try
        {
            long startAddress = _index.TimestampFloorAddress(timestamp, _log!.BeginAddress);
            using var scanner = new BatchScanner(_log, startAddress, committed.Address, ScanBufferingMode.SinglePageBuffering, _damaged ??= Damaged);
            while (scanner.TryNext(out var owner, out var batch, out _))
            {
                using (owner)
                {
                    if (batch.NextOffset <= begin || batch.MaxTimestamp < timestamp)
                    {
                        continue;
                    }
                    var readable = batch.Readable(out var decompressed);
                    using (decompressed)
                    {
                        foreach (var record in readable)
                        {
                            if (record.Offset >= begin && record.Offset < committed.Offset && record.Timestamp >= timestamp)
                            {
                                return record.Offset;
                            }
                        }
                    }
                }
            }
        }
        catch (Exception ex) when (ex is FasterException or LogCorruptedException)
        {
            if (BeginOffset > begin)
            {
                return OffsetForTimestamp(timestamp); // records deleted under the scan (see Read): look again from the new begin
            }
            throw MarkFailed(ex as LogCorruptedException ?? Damaged($"timestamp lookup failed: {ex.Message}"));
        }
        return committed.Offset;
    }

    ValueTask<RecordSet> IPartition.ReadAsync(long offset, int maxRecords, int maxBytes, CancellationToken cancellationToken) =>
        new(Read(offset, maxRecords, maxBytes));

    ValueTask<long> IPartition.OffsetForTimestampAsync(long timestamp, CancellationToken cancellationToken) => new(OffsetForTimestamp(timestamp));

    private Func<string, Exception>? _corrupted;
    private Func<string, Exception>? _damaged;

    /// <summary>Reads of at least this many bytes buffer two pages ahead instead of one.</summary>
    private const int LargeReadBytes = 1 << 20;

    /// <summary>The most a large read takes from the files at once.</summary>
    private const int StoredChunkBytes = 16 << 20;

    private static void Dispose(List<(IMemoryOwner<byte> Owner, RecordBatch Batch)> batches)
    {
        foreach (var (owner, _) in batches)
        {
            owner.Dispose();
        }
    }

    /// <summary>The stored batches in [<paramref name="from"/>, <paramref name="until"/>), checked.</summary>
    private BatchScanner Scan(long from, long until, ScanBufferingMode buffering = ScanBufferingMode.SinglePageBuffering) =>
        new(_log!, from, until, buffering, _corrupted ??= Corrupted); // one delegate per partition, not one per read

    private long FindBatchAddress(long offset, CommitPoint committed)
    {
        long startAddress = _index.FloorAddress(offset, _log!.BeginAddress);
        using var scanner = Scan(startAddress, committed.Address);
        while (scanner.TryNext(out var owner, out var batch, out long address))
        {
            using (owner)
            {
                if (batch.NextOffset > offset)
                {
                    return address;
                }
            }
        }
        return committed.Address;
    }

    private LogCorruptedException FirstRecordsMissing(long? firstReadable, long beginOffset) => Corrupted(
        $"the first readable record is at offset {firstReadable?.ToString(CultureInfo.InvariantCulture) ?? "(none)"}, but records from offset {beginOffset} should be stored (a segment file is missing?)");
}
