using FASTER.core;
using Gateway.Log.Device;
using Gateway.Storage;

namespace Gateway.Log;

// The partition at rest: an idle partition's log is closed (its pages are most of what a partition costs: two pages
// of 2^PageSizeBits bytes from the moment it opens) and opened again by the next use. What readers ask without reading
// records (offsets, size, the oldest timestamp) is kept in memory; so are the index, the Idempotency-Keys and the
// producers' last batches, so that opening again reads nothing but the commit record and the tail page.
public sealed partial class PartitionLog
{
    private readonly Lock _wakeLock = new();
    private int _users; // guarded by _wakeLock: uses under way (Use), which keep the log open
    private long _lastUsed; // Environment.TickCount64 of the last use
    private long _restBeginAddress; // the log's begin address while at rest
    private bool _unrecovered; // opened at rest from a marker: the first use recovers the log (its index, keys, producers)
    private OldestRecord? _oldest; // the oldest record's timestamp, as long as the begin offset has not moved

    /// <summary>True while the partition's log is open (not at rest).</summary>
    public bool IsOpen
    {
        get
        {
            lock (_wakeLock)
            {
                return _log is not null;
            }
        }
    }

    /// <summary>Opened at rest from its marker and not recovered yet.</summary>
    private bool Unrecovered
    {
        get
        {
            lock (_wakeLock)
            {
                return _unrecovered;
            }
        }
    }

    /// <summary>The log's tail address; at rest, the end of what was committed.</summary>
    private long TailAddress()
    {
        lock (_wakeLock)
        {
            return _log?.TailAddress ?? Volatile.Read(ref _committed).Address;
        }
    }

    /// <summary>
    /// The memory the open log holds in pages, 0 at rest: FasterLog allocates a buffer slot's page when its tail first
    /// reaches it (and the first two when it opens), so a log whose tail is on page N holds the first N + 2 of its
    /// slots, all of them once it has gone round.
    /// </summary>
    internal long OpenMemoryBytes
    {
        get
        {
            lock (_wakeLock)
            {
                if (_log is null)
                {
                    return 0;
                }
                long pages = Math.Min(1L << (_memorySizeBits - _pageSizeBits), Math.Max(2, (_log.TailAddress >> _pageSizeBits) + 2));
                return pages << _pageSizeBits;
            }
        }
    }

    /// <summary>When the partition was last used (<see cref="Environment.TickCount64"/>).</summary>
    internal long LastUsed => Volatile.Read(ref _lastUsed);

    /// <summary>
    /// A use of the log: opens it if it is at rest (a failure to open leaves the partition failed, which the caller's
    /// <see cref="ThrowIfUnavailable"/> reports) and keeps it open until the use is disposed.
    /// </summary>
    private Use Enter()
    {
        lock (_wakeLock)
        {
            if (_log is null && !_closed && !_closing && Volatile.Read(ref _failure) is null)
            {
                Wake();
            }
            _users++;
        }
        Volatile.Write(ref _lastUsed, Environment.TickCount64);
        return new Use(this);
    }

    /// <summary>A use of the log only if it is open now (a commit of a partition at rest has nothing to do).</summary>
    private bool TryEnterOpen(out Use use)
    {
        lock (_wakeLock)
        {
            if (_log is null)
            {
                use = default;
                return false;
            }
            _users++;
        }
        use = new Use(this);
        return true;
    }

    private void Leave()
    {
        lock (_wakeLock)
        {
            _users--;
        }
    }

    private readonly struct Use(PartitionLog partition) : IDisposable
    {
        public void Dispose() => partition?.Leave();
    }

    /// <summary>
    /// Opens the partition at rest from its marker when the marker matches the commit record (nothing was written after
    /// the log was closed): offsets, size and timestamps from the marker, the log recovered at the first use.
    /// </summary>
    private bool TryOpenAtRest()
    {
        var marker = RestMarker.Load(_directory);
        using (var record = new CommitRecord(_directory))
        {
            if (!record.TryReadRecovery(out var info) || info.Cookie is not { Length: 8 } cookie)
            {
                return false;
            }
            if (marker is null && BitConverter.ToInt64(cookie) == 0 && info.UntilAddress == info.BeginAddress)
            {
                // Nothing was ever committed (a partition made at rest): its first record, synced when it was made,
                // says so; the first commit after any opening would have synced a later one.
                marker = new RestMarker(info.UntilAddress, 0, info.BeginAddress, long.MinValue, null);
            }
            if (marker is null || BitConverter.ToInt64(cookie) != marker.NextOffset || info.UntilAddress != marker.Address || info.BeginAddress != marker.BeginAddress)
            {
                return false;
            }
        }
        var state = PartitionState.Load(_directory);
        if (state.BeginOffset > marker.NextOffset || (marker.Address > marker.BeginAddress && SegmentFilesProblem(marker.BeginAddress, marker.Address) is not null))
        {
            return false; // recovered now, which says what is wrong
        }
        _nextOffset = marker.NextOffset;
        _issuedOffset = marker.NextOffset;
        _maxTimestamp = marker.MaxTimestamp;
        _beginOffset = state.BeginOffset;
        _committed = new CommitPoint(marker.NextOffset, marker.Address);
        _restBeginAddress = marker.BeginAddress;
        _oldest = marker.OldestTimestamp is long oldest ? new OldestRecord(state.BeginOffset, oldest) : null;
        _unrecovered = true;
        return true;
    }

    /// <summary>
    /// Makes a new partition at rest: its first commit record (next offset 0), written by a log of the smallest pages
    /// (nothing is appended to it, and an empty log's addresses do not depend on the page size), so that making a
    /// topic of many partitions allocates no log pages. Its log opens with the store's pages at its first use.
    /// </summary>
    private void MakeAtRest()
    {
        try
        {
            using var device = new SegmentFileDevice(Path.Combine(_directory, "data.log"), $"log {Topic}/{Partition}", _options.CacheWrittenData, _journal);
            using var record = new CommitRecord(_directory);
            using (var log = new FasterLog(Settings(device, record, pageSizeBits: MinPageSizeBits)))
            {
                // Waited for without spinning: partitions are made many at once, and spinning callers would take
                // the cores from the writes they wait for.
                log.CommitStronglyAsync(BitConverter.GetBytes(0L)).AsTask().GetAwaiter().GetResult();
            }
            if (!record.TryReadRecovery(out var info) || info.Cookie is not { Length: 8 } cookie || BitConverter.ToInt64(cookie) != 0)
            {
                throw Corrupted("its first commit record could not be written");
            }
            _committed = new CommitPoint(0, info.UntilAddress);
            _restBeginAddress = info.BeginAddress;
            _verified.TrySetResult();
        }
        catch (Exception ex) when (ex is FasterException or LogCorruptedException or IOException)
        {
            MarkFailed(ex as LogCorruptedException ?? new LogCorruptedException($"Partition {Topic}/{Partition} could not be made: {ex.Message}"));
            LogRecoveryFailed(_logger, Topic, Partition, ex.Message);
        }
    }

    private const int MinPageSizeBits = 12;

    /// <summary>
    /// Verifies the log of a partition that started at rest, from its segment files, without opening it: every batch's
    /// CRC and dense offsets from the begin offset to the next offset its commit recorded — what recovery at open would
    /// check. Damage fails the partition (readiness names it) unless the partition opened meanwhile (its recovery then
    /// checks for itself). One partition at a time, once the store serves, like the logs below recovery checkpoints.
    /// </summary>
    internal async Task VerifyAtRestAsync(CancellationToken cancellationToken)
    {
        if (!Unrecovered)
        {
            return;
        }
        await _verificationGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await Task.Run(VerifyAtRest, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _verificationGate.Release();
        }
    }

    private void VerifyAtRest()
    {
        CommitPoint committed;
        long beginAddress;
        long beginOffset;
        lock (_wakeLock)
        {
            if (!_unrecovered || Failure is not null)
            {
                return;
            }
            (committed, beginAddress, beginOffset) = (Volatile.Read(ref _committed), _restBeginAddress, BeginOffset);
        }
        if (committed.Address <= beginAddress)
        {
            return;
        }
        LogCorruptedException? damage = null;
        try
        {
            using var device = new SegmentFileDevice(Path.Combine(_directory, "data.log"), $"log {Topic}/{Partition} verification");
            device.Initialize(1L << _options.SegmentSizeBits);
            using var scanner = new StoredScanner(device, _pageSizeBits, _options.SegmentSizeBits, beginAddress, committed.Address, committed.Address, StoredChunkBytes, Damaged);
            long? first = null;
            long next = 0;
            while (scanner.TryNext(out var owner, out var batch, out long address))
            {
                using (owner)
                {
                    if (first is not null && batch.BaseOffset != next)
                    {
                        throw Damaged($"offset {next} is missing at address {address}, the log continues at {batch.BaseOffset}");
                    }
                    first ??= batch.BaseOffset;
                    next = batch.NextOffset;
                }
            }
            if (first is null ? beginOffset < committed.Offset : first > beginOffset || next != committed.Offset)
            {
                throw Damaged($"the committed log holds offsets [{first?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, {next}), its commit recorded [{beginOffset}, {committed.Offset})");
            }
        }
        catch (Exception ex) when (ex is LogCorruptedException or IOException or InvalidDataException)
        {
            damage = ex as LogCorruptedException ?? Damaged($"verifying its log failed: {ex.Message}");
        }
        if (damage is null)
        {
            return;
        }
        lock (_wakeLock)
        {
            if (_unrecovered && Volatile.Read(ref _committed) == committed)
            {
                MarkFailed(damage);
                LogRecoveryFailed(_logger, Topic, Partition, damage.Message);
            }
        }
    }

    /// <summary>Opens the log of a partition at rest. Called under <c>_wakeLock</c>.</summary>
    private void Wake()
    {
        // The log's page buffers are allocated and cleared now: in huge pages, where a fault of 4 KiB costs far more per
        // byte than one of 2 MiB (a VM's), opening takes about a millisecond instead of tens (docs/storage.md).
        using var hugePages = _options.HugePages ? HugePages.Open() : default;
        try
        {
            // Before anything can be written: a marker that outlived a write would hide it from the next start.
            RestMarker.Delete(_directory);
        }
        catch (IOException ex)
        {
            MarkFailed(new LogCorruptedException($"Partition {Topic}/{Partition} could not be opened: its rest marker could not be removed: {ex.Message}"));
            return;
        }
        if (_unrecovered)
        {
            _unrecovered = false;
            OpenLog(fresh: false);
            return;
        }
        try
        {
            _device = new SegmentFileDevice(Path.Combine(_directory, "data.log"), $"log {Topic}/{Partition}", _options.CacheWrittenData, _journal);
            _commitManager = new CommitRecord(_directory);
            _log = new FasterLog(Settings(_device, _commitManager));
            _log.Recover();
            var committed = Volatile.Read(ref _committed);
            long? recorded = _log.RecoveredCookie is { Length: 8 } cookie ? BitConverter.ToInt64(cookie) : null;
            if (_log.CommittedUntilAddress != committed.Address || recorded != committed.Offset || _log.BeginAddress != _restBeginAddress)
            {
                throw new LogCorruptedException(
                    $"Partition {Topic}/{Partition} is damaged: its log changed while at rest (it closed at address {committed.Address}, offset {committed.Offset}; " +
                    $"it opens at address {_log.CommittedUntilAddress}, offset {recorded?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)"}).");
            }
        }
        catch (Exception ex) when (ex is FasterException or LogCorruptedException or IOException)
        {
            MarkFailed(ex as LogCorruptedException ?? new LogCorruptedException($"Partition {Topic}/{Partition} could not be opened again: {ex.Message}"));
            LogRecoveryFailed(_logger, Topic, Partition, ex.Message);
        }
    }

    /// <summary>
    /// Closes the log if the partition is idle: nothing in use, everything appended committed and published, no commit,
    /// checkpoint or verification under way, and (unless <paramref name="force"/>, the memory budget's call) unused for
    /// <paramref name="idleMs"/>. Leaves a checkpoint at the end and the rest marker. True when it closed the log.
    /// </summary>
    internal bool TryRest(long now, long idleMs, bool force)
    {
        if (!force && now - LastUsed < idleMs)
        {
            return false;
        }
        lock (_wakeLock)
        {
            if (_log is null || _users != 0 || _closed || _closing || Failure is not null || !_verified.Task.IsCompleted
                || !_lastCommit.IsCompleted || !_checkpointWrite.IsCompleted || Volatile.Read(ref _checkpointing) != 0 || _commitGate.CurrentCount == 0)
            {
                return false;
            }
            long maxTimestamp;
            lock (_appendLock)
            {
                if (_nextOffset != _issuedOffset || _nextOffset != EndOffset)
                {
                    return false; // appended, not yet committed and published
                }
                maxTimestamp = _maxTimestamp;
            }
            var committed = Volatile.Read(ref _committed);
            try
            {
                if (committed.Offset > 0 && committed.Address > Volatile.Read(ref _checkpointAddress) && Interlocked.CompareExchange(ref _checkpointing, 1, 0) == 0)
                {
                    // The next start recovers this partition from here without reading its log.
                    WriteCheckpoint(committed.Address, committed.Offset, maxTimestamp);
                }
            }
            catch (IOException ex)
            {
                LogCheckpointFailed(_logger, Topic, Partition, ex.Message);
            }
            CloseLog();
            return true;
        }
    }

    /// <summary>
    /// Closes the log (called under <c>_wakeLock</c>, with nothing in use) and, when everything appended is committed,
    /// leaves the rest marker for the next start.
    /// </summary>
    private void CloseLog()
    {
        if (_log is null)
        {
            return;
        }
        var committed = Volatile.Read(ref _committed);
        RestMarker? marker = null;
        if (Failure is null)
        {
            lock (_appendLock)
            {
                try
                {
                    if (_nextOffset == committed.Offset)
                    {
                        _commitManager?.Sync(); // the marker names this record: it must be on disk before the marker is
                        long? oldest = committed.Offset > BeginOffset ? ReadOldest(BeginOffset, committed) : null;
                        marker = new RestMarker(committed.Address, committed.Offset, _log.BeginAddress, _maxTimestamp, oldest);
                    }
                }
                catch (Exception ex) when (ex is IOException or FasterException or LogCorruptedException)
                {
                    marker = null; // the next start recovers this partition before serving
                }
            }
        }
        _restBeginAddress = _log.BeginAddress;
        _log.Dispose();
        _device?.Dispose();
        _commitManager?.Dispose();
        (_log, _device, _commitManager) = (null, null, null);
        try
        {
            marker?.Save(_directory);
        }
        catch (IOException)
        {
            // Only the next start is longer: it recovers this partition before serving.
        }
    }

    /// <summary>The timestamp of the record at <paramref name="begin"/> (the open log's oldest), remembered for the partition at rest.</summary>
    private long? ReadOldest(long begin, CommitPoint committed)
    {
        if (Volatile.Read(ref _oldest) is { } known && known.Begin == begin)
        {
            return known.Timestamp;
        }
        using var scanner = new BatchScanner(_log!, _index.FloorAddress(begin, _log!.BeginAddress), committed.Address, ScanBufferingMode.SinglePageBuffering, _damaged ??= Damaged);
        while (scanner.TryNext(out var owner, out var batch, out _))
        {
            using (owner)
            {
                if (batch.NextOffset <= begin)
                {
                    continue;
                }
                var readable = batch.Readable(out var decompressed);
                using (decompressed)
                {
                    foreach (var record in readable)
                    {
                        if (record.Offset >= begin)
                        {
                            Volatile.Write(ref _oldest, new OldestRecord(begin, record.Timestamp));
                            return record.Timestamp;
                        }
                    }
                }
            }
        }
        return null;
    }

    private FasterLogSettings Settings(SegmentFileDevice device, CommitRecord commitManager, int? pageSizeBits = null) => new()
    {
        LogDevice = device,
        LogCommitManager = commitManager,
        PageSizeBits = pageSizeBits ?? _pageSizeBits,
        MemorySizeBits = pageSizeBits + 1 ?? _memorySizeBits,
        SegmentSizeBits = _options.SegmentSizeBits,
        LogChecksum = LogChecksumType.PerEntry,
        // Not fast-commit: its recovery silently rolls back to the last intact commit record when data is
        // damaged. Plain commits write metadata (with our next offset as the cookie) that we can check.
        FastCommitMode = false,
        // The constructor's own recovery swallows errors and may start empty; Recover() below does not.
        TryRecoverLatest = false,
    };

    /// <summary>The timestamp of the record at offset <see cref="Begin"/>, the partition's oldest while its begin offset is there.</summary>
    private sealed record OldestRecord(long Begin, long Timestamp);
}
