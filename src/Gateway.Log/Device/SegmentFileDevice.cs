using System.Collections.Concurrent;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log.Device;

/// <summary>
/// A partition's log files (<c>data.log.N</c>, one per segment, as FasterLog's own Linux device names them), written
/// durably (each write returns once it is on disk, as with FasterLog's device, which opens them <c>O_SYNC</c>), read
/// on a thread of the partition's own.
/// <para>
/// FasterLog's stock device on Linux runs every read on the thread pool, blocking a pool thread in <c>pread</c>, while
/// FasterLog's iterators wait synchronously for their page on pool threads too: with a small pool, concurrent cold
/// fetches held the pool threads their own reads needed and waited for the pool to inject more, which is why the pool
/// used to be raised to 64 threads — a price every request paid in context switches on a small machine (figures:
/// docs/storage.md). Reads here run in order on an <see cref="IoThread{T}"/> (started on demand, ended when idle),
/// so no reader waits for the pool. Writes stay on the pool, queued to the thread that issued them (FasterLog's
/// commit): it runs them as soon as it is free, and FasterLog's completion work (the commit record's write) then
/// follows on the same thread, with fewer hops than the stock device's three. Reads and writes are positional, on
/// one handle per segment, and writes that bypass the page cache on a second.
/// </para>
/// <para>
/// Unless written data is to stay cached, writes bypass the page cache (<c>O_DIRECT</c>, on a handle of their own):
/// FasterLog's page buffers and transfers are aligned to its 512-byte sectors, as direct I/O asks, so the data goes
/// from the log's memory to the disk without a copy into cached pages. Copying large requests into the page cache
/// (and, before that, keeping it from growing with the log, which on a VM whose host backs guest memory lazily costs
/// a host fault per new 4 KiB page) was the largest single cost of large produce requests (figures: docs/storage.md).
/// Where the file system refuses direct I/O, or a transfer's alignment (a disk with 4 KiB logical sectors), writes
/// go through the page cache from then on, and each write's pages are dropped once it is durable (write-through, so
/// they are clean): all but the page the write ended in, which the next commit writes again. Reads stay buffered,
/// and the pages they bring in stay cached.
/// </para>
/// <para>
/// Writes past the page cache ask for a data sync (<see cref="DataSync"/>: the data and the size, not the
/// modification time), and a busy log is written ahead with zeros (<see cref="Prepare"/>), so that a commit's write
/// changes no metadata and costs one write and one cache flush. In a VM every block request costs CPU besides the
/// wait (an exit to the host, an interrupt, a sleeping thread woken), so each one a commit round saves counts
/// (figures: docs/storage.md).
/// </para>
/// </summary>
internal sealed class SegmentFileDevice : StorageDeviceBase
{
    private const int InvalidArgument = 22; // EINVAL: what direct I/O answers to a transfer it cannot do
    private const long PrepareAfter = 4 << 20; // bytes written since the device opened before it writes ahead
    private const long PrepareAhead = 16 << 20; // how far past the furthest write the blocks are kept written
    private const int PrepareChunk = 4 << 20; // bytes of zeros per write ahead
    private const long PrepareBelow = 64 << 10; // average bytes per write above which nothing is written ahead

    // Zeros to write ahead with, aligned for direct I/O: allocated once, on first use, for the process's lifetime.
    private static readonly Lazy<IntPtr> Zeros = new(static () =>
    {
        unsafe
        {
            void* zeros = System.Runtime.InteropServices.NativeMemory.AlignedAlloc(PrepareChunk, (nuint)PageCache.PageSize);
            System.Runtime.InteropServices.NativeMemory.Clear(zeros, PrepareChunk);
            return (IntPtr)zeros;
        }
    });

    private readonly ConcurrentDictionary<int, SafeFileHandle> _segments = new(); // reads; writes while not bypassing
    private readonly ConcurrentDictionary<int, SafeFileHandle> _bypassing = new(); // writes that bypass the page cache
    private readonly IoThread<PendingRead> _reader;
    private readonly bool _cacheWrites;
    private readonly WriteJournal? _journal; // while the store journals, writes go through the page cache and into it
    private readonly ConcurrentDictionary<int, SafeFileHandle> _journaled = new(); // writes through the page cache, unsynced
    private volatile bool _bypass;
    private readonly Lock _dropLock = new();
    private long _droppedUntil = -1; // log address (segment × segment size + offset) below which written pages were dropped
    private int _writing; // writes queued on the pool and not yet finished: Dispose waits for them
    private volatile bool _closed;

    // Written ahead: see Prepare. Guarded by _prepareGate (an object: writes wait on it with Monitor).
    private readonly object _prepareGate = new();
    private readonly IoThread<bool> _preparer;
    private long _firstWrite = -1; // log address of the first write since the device was opened
    private long _writtenUntil; // log address where the furthest write issued ends
    private long _averageWrite; // bytes per write, a moving average (weight 1/8 for the newest)
    private long _preparedUntil = -1; // log address below which the file's blocks exist; -1 until looked up
    private long _preparingFrom = -1; // the range being written ahead now, if any
    private long _preparingUntil;
    private bool _prepareQueued;
    private bool _prepareStopped; // a write ahead failed: the log is written as before from then on

    public SegmentFileDevice(string fileName, string name, bool cacheWrites = false, WriteJournal? journal = null)
        : base(fileName, sectorSize: 512, Devices.CAPACITY_UNSPECIFIED)
    {
        _journal = journal;
        _cacheWrites = cacheWrites || !PageCache.CanDrop;
        _bypass = !cacheWrites && PageCache.CanBypass;
        DirectorySync.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(fileName))!);
        _reader = new IoThread<PendingRead>($"{name} reads", Read, IoThread<PendingRead>.DefaultIdleTimeout);
        _preparer = new IoThread<bool>($"{name} writes ahead", _ => Prepare(), IoThread<bool>.DefaultIdleTimeout);
    }

    /// <summary>Log address below which the segment files' blocks are written (data or zeros); -1 before the first look.</summary>
    internal long PreparedUntil
    {
        get
        {
            lock (_prepareGate)
            {
                return _preparedUntil;
            }
        }
    }

    /// <summary>Whether writes bypass the page cache (until the file system refuses one).</summary>
    public bool WritesBypassCache => _bypass;

    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        if (_closed)
        {
            // Closed: the write fails like a device error, so no commit that needs it can succeed.
            callback(uint.MaxValue, 0, context);
            return;
        }
        // On the pool, queued to the thread that issued it (FasterLog's commit, on a pool thread): it runs as soon as
        // that work item ends, and FasterLog's completion work (the commit record's write) queues behind it there too.
        Interlocked.Increment(ref _writing);
        ThreadPool.UnsafeQueueUserWorkItem(
            static state => state.Device.Write(state.Write),
            (Device: this, Write: new PendingWrite(sourceAddress, segmentId, (long)destinationAddress, numBytesToWrite, callback, context)),
            preferLocal: true);
    }

    public override void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context)
    {
        if (_closed)
        {
            callback(uint.MaxValue, 0, context);
            return;
        }
        _reader.Post(new PendingRead(segmentId, (long)sourceAddress, destinationAddress, readLength, callback, context));
    }

    public override void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result)
    {
        RemoveSegment(segment);
        callback(result);
    }

    public override void RemoveSegment(int segment)
    {
        if (_segments.TryRemove(segment, out var handle))
        {
            handle.Dispose();
        }
        if (_bypassing.TryRemove(segment, out handle))
        {
            handle.Dispose();
        }
        if (_journaled.TryRemove(segment, out handle))
        {
            handle.Dispose();
        }
        try
        {
            File.Delete(GetSegmentFilename(FileName, segment));
        }
        catch (IOException)
        {
            // Left behind, it is below the log's begin address and never read; the next truncation tries again.
        }
    }

    /// <summary>
    /// Reads the log's bytes at <paramref name="address"/> from its segment file, synchronously, within one segment:
    /// committed addresses only (their pages are written). Returns how many bytes there were.
    /// </summary>
    internal int ReadStored(long address, Span<byte> destination)
    {
        var handle = ExistingSegment((int)(address / segmentSize));
        long at = address % segmentSize;
        int done = 0;
        while (done < destination.Length)
        {
            int n = RandomAccess.Read(handle, destination[done..], at + done);
            if (n == 0)
            {
                break;
            }
            done += n;
        }
        return done;
    }

    public override long GetFileSize(int segment) => segmentSize > 0 ? segmentSize : RandomAccess.GetLength(Segment(segment));

    public override void Dispose()
    {
        _closed = true;
        // FasterLog is closed after its last commit; a read of a closing iterator may still be under way.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while ((Volatile.Read(ref _writing) > 0 || _reader.Busy || _preparer.Busy) && waited.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(1);
        }
        _reader.Close();
        _preparer.Close();
        foreach (var handle in _segments.Values.Concat(_bypassing.Values).Concat(_journaled.Values))
        {
            handle.Dispose();
        }
        _segments.Clear();
        _bypassing.Clear();
        _journaled.Clear();
    }

    private SafeFileHandle Segment(int segmentId) =>
        _segments.GetOrAdd(segmentId, static (id, device) => device.Open(id), this);

    /// <summary>
    /// The segment's handle for a read, which never creates the file: a read racing the removal of its segment (a
    /// reader behind retention) fails as a read of a missing file instead of leaving an empty segment behind.
    /// </summary>
    private SafeFileHandle ExistingSegment(int segmentId)
    {
        if (_segments.TryGetValue(segmentId, out var handle))
        {
            return handle;
        }
        try
        {
            return _segments.GetOrAdd(segmentId, static (id, device) => device.Open(id, create: false), this);
        }
        catch (FileNotFoundException)
        {
            MissingSegment = segmentId;
            throw;
        }
    }

    /// <summary>The last segment a read found missing (a recovery that fails on it names it), or null.</summary>
    public int? MissingSegment { get; private set; }

    private SafeFileHandle Open(int segmentId, FileOptions options = FileOptions.WriteThrough, bool create = true)
    {
        string path = GetSegmentFilename(FileName, segmentId);
        bool created = !File.Exists(path);
        var handle = File.OpenHandle(path, create ? FileMode.OpenOrCreate : FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, options);
        if (created)
        {
            // A new segment's name is durable only with its directory: before any write in it is acknowledged.
            DirectorySync.SyncParentOf(path);
        }
        return handle;
    }

    private void Write(PendingWrite write)
    {
        if (_journal is not null && _journal.BeginWrite())
        {
            WriteJournaled(write);
            return;
        }
        uint error = 0;
        try
        {
            unsafe
            {
                var data = Issue(write);
                if (!_bypass || !TryWriteBypassing(write.SegmentId, data, write.Address))
                {
                    RandomAccess.Write(Segment(write.SegmentId), data, write.Address);
                    if (!_cacheWrites && segmentSize > 0)
                    {
                        long start = write.SegmentId * segmentSize + write.Address;
                        DropWritten(start, start + write.Length);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            error = ErrorCode(ex);
        }
        Interlocked.Decrement(ref _writing);
        write.Callback(error, error == 0 ? write.Length : 0, write.Context);
    }

    /// <summary>
    /// The write's data, once it is recorded as issued (<see cref="BeforeWrite"/>): every write, direct, journaled or
    /// through the page cache after a refused direct one, so that zeros written ahead never land on it.
    /// </summary>
    private unsafe ReadOnlySpan<byte> Issue(PendingWrite write)
    {
        if (segmentSize > 0)
        {
            long start = write.SegmentId * segmentSize + write.Address;
            BeforeWrite(start, start + write.Length);
        }
        return new ReadOnlySpan<byte>((void*)write.Source, (int)write.Length);
    }

    /// <summary>
    /// Writes through the page cache, unsynced, and queues the write for the store's journal, which completes it once
    /// durable (<see cref="WriteJournal"/>).
    /// </summary>
    private void WriteJournaled(PendingWrite write)
    {
        bool queued = false;
        Exception? failed = null;
        try
        {
            unsafe
            {
                var data = Issue(write);
                var handle = _journaled.GetOrAdd(write.SegmentId, static (id, device) => device.Open(id, FileOptions.None), this);
                RandomAccess.Write(handle, data, write.Address);
                _journal!.Append(GetSegmentFilename(FileName, write.SegmentId), write.Address, data, failure =>
                {
                    Interlocked.Decrement(ref _writing);
                    write.Callback(failure is null ? 0 : ErrorCode(failure), failure is null ? write.Length : 0, write.Context);
                });
                queued = true; // completed by the journal from here on, whatever happens
            }
        }
        catch (Exception ex) when (!queued && ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            failed = ex;
        }
        finally
        {
            _journal!.EndWrite();
        }
        if (failed is not null)
        {
            Interlocked.Decrement(ref _writing);
            write.Callback(ErrorCode(failed), 0, write.Context);
        }
    }

    /// <summary>
    /// Writes past the page cache; false where the file system will not, and writes go through the page cache from
    /// then on.
    /// </summary>
    private bool TryWriteBypassing(int segmentId, ReadOnlySpan<byte> data, long address)
    {
        if (!_bypassing.TryGetValue(segmentId, out var handle))
        {
            var opened = Open(segmentId, DataSync.Options);
            if (!PageCache.Bypass(opened))
            {
                opened.Dispose();
                _bypass = false;
                return false;
            }
            handle = _bypassing.GetOrAdd(segmentId, opened);
            if (handle != opened)
            {
                opened.Dispose(); // another write opened it meanwhile
            }
        }
        try
        {
            DataSync.Write(handle, data, address);
            return true;
        }
        catch (IOException ex) when ((ex.HResult & 0xFFFF) == InvalidArgument)
        {
            // Not aligned as the file system needs (checked before a transfer starts): the whole write is done again
            // through the page cache, at the same place, so a part written before the refusal is written over.
            _bypass = false;
            return false;
        }
    }

    /// <summary>
    /// Records a write about to be issued, waits while it overlaps the range being written ahead (the zeros must land
    /// first), and asks for more to be written ahead when the log's tail comes within <see cref="PrepareAhead"/> of
    /// the end of what is.
    /// </summary>
    private void BeforeWrite(long start, long end)
    {
        bool queue = false;
        lock (_prepareGate)
        {
            if (_firstWrite < 0)
            {
                _firstWrite = start;
            }
            _writtenUntil = Math.Max(_writtenUntil, end);
            _averageWrite += ((end - start) - _averageWrite) / 8;
            while (_preparingFrom >= 0 && start < _preparingUntil && end > _preparingFrom)
            {
                Monitor.Wait(_prepareGate);
            }
            // Before the first look _preparedUntil is -1, below any address: the first look is asked for.
            if (!_prepareQueued && !_prepareStopped && _writtenUntil - _firstWrite >= PrepareAfter && _averageWrite < PrepareBelow
                && _preparedUntil < _writtenUntil + PrepareAhead)
            {
                _prepareQueued = true;
                queue = true;
            }
        }
        if (queue)
        {
            _preparer.Post(true);
        }
    }

    /// <summary>
    /// Writes zeros ahead of the log's tail, in <see cref="PrepareChunk"/>s, until <see cref="PrepareAhead"/> past the
    /// furthest write. A commit's write then lands on blocks the file already has, inside its size, so the file
    /// system has no metadata to write before the data counts as durable: one write and one cache flush per commit
    /// instead of a second write, of the inode, and a wait for it (figures: docs/storage.md). Zeros are never
    /// written at or below a write already issued (they start past the furthest one, and a write that reaches the
    /// range being prepared waits for it), so they never cover log data; what lies past the log's tail is never read.
    /// A device starts this once it has written <see cref="PrepareAfter"/> since it was opened, so a partition that
    /// is seldom written holds no more than it did; a busy one holds up to <see cref="PrepareAhead"/> plus a chunk of
    /// zeros past its tail.
    /// </summary>
    private void Prepare()
    {
        while (true)
        {
            long from;
            long until;
            lock (_prepareGate)
            {
                if (_closed || _prepareStopped || !_bypass)
                {
                    _prepareQueued = false;
                    return;
                }
                if (_preparedUntil < 0 && !TryLookUpPrepared())
                {
                    _prepareStopped = true;
                    _prepareQueued = false;
                    return;
                }
                from = Math.Max(_preparedUntil, (_writtenUntil + PageCache.PageSize - 1) & ~(PageCache.PageSize - 1));
                if (from >= _writtenUntil + PrepareAhead)
                {
                    _prepareQueued = false;
                    return;
                }
                until = Math.Min(from + PrepareChunk, ((from / segmentSize) + 1) * segmentSize);
                _preparingFrom = from;
                _preparingUntil = until;
            }
            bool prepared = false;
            try
            {
                int segment = (int)(from / segmentSize);
                unsafe
                {
                    prepared = TryWriteBypassing(segment, new ReadOnlySpan<byte>((void*)Zeros.Value, (int)(until - from)), from - (segment * segmentSize));
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                // A full disk, say: the commits that need the space fail on their own; nothing is written ahead again.
            }
            lock (_prepareGate)
            {
                _preparingFrom = -1;
                if (prepared)
                {
                    _preparedUntil = until;
                }
                else
                {
                    _prepareStopped = true;
                }
                Monitor.PulseAll(_prepareGate);
            }
        }
    }

    /// <summary>What the segment being written already holds (written ahead before a restart, say); under the gate.</summary>
    private bool TryLookUpPrepared()
    {
        try
        {
            int current = (int)(_writtenUntil / segmentSize);
            _preparedUntil = (current * segmentSize) + Math.Min(RandomAccess.GetLength(Segment(current)), segmentSize);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Drops the written pages below <paramref name="end"/>'s page from the page cache, from where the last drop
    /// ended (or <paramref name="start"/>'s page, the first time). A write that finishes before an earlier one may
    /// drop that one's pages while it runs: the kernel keeps pages that are not yet clean, so nothing but caching is
    /// at stake.
    /// </summary>
    private void DropWritten(long start, long end)
    {
        long until = end & ~(PageCache.PageSize - 1);
        lock (_dropLock)
        {
            if (_droppedUntil < 0)
            {
                _droppedUntil = start & ~(PageCache.PageSize - 1);
            }
            while (_droppedUntil < until)
            {
                int segment = (int)(_droppedUntil / segmentSize);
                long offset = _droppedUntil - (segment * segmentSize);
                long length = Math.Min(until - _droppedUntil, segmentSize - offset);
                if (_segments.TryGetValue(segment, out var handle))
                {
                    PageCache.Drop(handle, offset, length);
                }
                _droppedUntil += length;
            }
        }
    }

    private void Read(PendingRead read)
    {
        uint error = 0;
        uint done = 0;
        try
        {
            var handle = ExistingSegment(read.SegmentId);
            while (done < read.Length)
            {
                int n;
                unsafe
                {
                    n = RandomAccess.Read(handle, new Span<byte>((byte*)read.Destination + done, (int)(read.Length - done)), read.Address + done);
                }
                if (n == 0)
                {
                    break; // the end of the file: FasterLog is told how much there was
                }
                done += (uint)n;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            error = ErrorCode(ex);
            done = 0;
        }
        read.Callback(error, done, read.Context);
    }

    private static uint ErrorCode(Exception ex) => (ex.HResult & 0xFFFF) is var code and not 0 ? (uint)code : uint.MaxValue;

    private readonly record struct PendingWrite(IntPtr Source, int SegmentId, long Address, uint Length, DeviceIOCompletionCallback Callback, object Context);

    private readonly record struct PendingRead(int SegmentId, long Address, IntPtr Destination, uint Length, DeviceIOCompletionCallback Callback, object Context);
}
