using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Gateway.Storage.Records;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log.Device;

/// <summary>
/// One commit for the writes of every partition: the store's write-ahead journal of file writes (what was written
/// where). A partition's log writes go to its segment files through the page cache, unsynced, and into this journal;
/// the journal writes everything queued since its last write in one write and one sync, and only then are the log
/// writes complete, so FasterLog's commits (and the producers waiting on them) see them durable. A commit round over
/// a thousand partitions then costs one device write and one cache flush, not a thousand of each: every block request
/// costs CPU in a VM, and the file system's journal serializes the syncs of many files (figures: docs/storage.md).
/// <para>
/// Once a journal file holds <see cref="RotateBytes"/>, writes go on in a new one while the files written during the
/// old one are synced (one <c>fdatasync</c> each, in the background) and the old one is deleted: it is needed only
/// until what it describes is in the files themselves. A start replays what journal files are left
/// (<see cref="Replay"/>): every intact entry is written again where it was written, in order, which brings each
/// file back to what it held when its writes were acknowledged (a log's later writes of a place hold what its earlier
/// ones held, and more), then the files are synced and the journal removed. An entry whose file no longer exists
/// (a segment removed by retention) is skipped; a topic's folder is removed only after a <see cref="Checkpoint"/>, so
/// a topic made again under the same name is never written with what the journal held for the one before.
/// </para>
/// <para>
/// The journal is used while commit rounds cover several partitions (<see cref="ObserveRound"/>): with one partition
/// written, its own synced write (straight from the log's memory to the disk) is one device write per round as well,
/// and writing the data twice (journal, then file) would only cost. So the store switches: to the journal at once when
/// rounds cover more than <see cref="LogStoreOptions.JournalAbovePartitions"/> partitions on average, back to direct
/// writes when they cover fewer than half as many — after a <see cref="Checkpoint"/>-like sync of every file the journal
/// describes, with writes held meanwhile, so that no entry is ever replayed over what a direct write put there later.
/// </para>
/// Entry: magic, CRC-32C of what follows it, data length, path length, offset, path (UTF-8, relative to the data
/// folder), data. A torn or damaged entry ends its file's replay: nothing after it was acknowledged.
/// </summary>
internal sealed partial class WriteJournal : IDisposable
{
    public const string DirectoryName = "journal";
    private const string Extension = ".journal";
    private const uint Magic = 0x4A525747; // "GWRJ"
    private const int Header = 4 + 4 + 4 + 4 + 8; // magic, CRC, data length, path length, offset

    private readonly string _root;
    private readonly string _directory;
    private readonly ILogger _logger;
    private readonly bool _dropSynced; // drop a file's cached pages once it is synced (written data is not kept cached)
    private readonly Lock _lock = new();
    private readonly Thread _thread;
    private readonly SemaphoreSlim _wake = new(0);
    private readonly HashSet<string> _written = new(StringComparer.Ordinal); // files written since the current file began (under _lock)
    private readonly Lock _writeLock = new(); // held while the journal file is written or replaced
    private Batch _queued = new(); // under _lock
    private Batch _spare = new();
    private SafeFileHandle _file;
    private long _sequence;
    private long _fileBytes;
    private Exception? _failure; // a journal write failed: nothing written after it can be acknowledged
    private volatile bool _stopping;
    private Task _checkpoint = Task.CompletedTask;

    // Which way log writes go: Direct (each its own synced write), Journal, or Switching (to Direct: writes wait).
    private const int Direct = 0, Journal = 1, Switching = 2;
    private readonly double _journalAbove; // partitions per round above which the journal is used
    private int _mode; // read with Volatile.Read, changed with Interlocked (the switch to direct needs a full fence)
    private int _journaling; // writers that chose the journal and have not yet queued their entry
    private readonly ManualResetEventSlim _switched = new(true); // reset while switching to direct writes
    private double _partitionsPerRound = 1; // moving average (weight 1/8 for the newest); the scheduler's loop only
    private volatile bool _directWanted;

    private WriteJournal(string root, long rotateBytes, double journalAbove, bool dropSynced, ILogger logger)
    {
        _journalAbove = journalAbove;
        _mode = journalAbove <= 0 ? Journal : Direct;
        _dropSynced = dropSynced;
        _root = Path.GetFullPath(root);
        _directory = Path.Combine(_root, DirectoryName);
        RotateBytes = rotateBytes;
        _logger = logger;
        DirectorySync.CreateDirectory(_directory);
        _file = NewFile(1);
        _thread = new Thread(Run) { IsBackground = true, Name = "write journal" };
        _thread.Start();
    }

    /// <summary>How large a journal file grows before writes go on in a new one and the files it describes are synced.</summary>
    public long RotateBytes { get; }

    /// <summary>
    /// Replays what journal files the data folder <paramref name="root"/> holds (a stop that was not graceful), then
    /// starts a new journal there.
    /// </summary>
    public static WriteJournal Open(string root, long rotateBytes, double journalAbove, bool dropSynced, ILogger logger)
    {
        var (entries, files) = Replay(root);
        if (files > 0)
        {
            LogReplayed(logger, entries, files);
        }
        return new WriteJournal(root, rotateBytes, journalAbove, dropSynced, logger);
    }

    /// <summary>
    /// Writes every intact entry of the journal files under <paramref name="root"/> again, in order, syncs the files
    /// written and removes the journal. Returns the entries written and the journal files read.
    /// </summary>
    internal static (long Entries, int Files) Replay(string root)
    {
        root = Path.GetFullPath(root);
        string directory = Path.Combine(root, DirectoryName);
        if (!Directory.Exists(directory))
        {
            return (0, 0);
        }
        var journals = Directory.GetFiles(directory, "*" + Extension).Order(StringComparer.Ordinal).ToList();
        var handles = new Dictionary<string, SafeFileHandle?>(StringComparer.Ordinal);
        long entries = 0;
        try
        {
            foreach (string journal in journals)
            {
                using var stream = new FileStream(journal, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
                while (TryReadEntry(stream, out string path, out long offset, out byte[] data))
                {
                    if (!handles.TryGetValue(path, out var handle))
                    {
                        string full = Path.GetFullPath(Path.Combine(root, path));
                        if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                        {
                            throw new IOException($"Journal {journal} names a file outside the data folder: {path}.");
                        }
                        handle = File.Exists(full) ? File.OpenHandle(full, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite) : null;
                        handles[path] = handle;
                    }
                    if (handle is not null)
                    {
                        RandomAccess.Write(handle, data, offset);
                        entries++;
                    }
                }
            }
            foreach (var handle in handles.Values)
            {
                if (handle is not null)
                {
                    DataSync.Flush(handle);
                }
            }
        }
        finally
        {
            foreach (var handle in handles.Values)
            {
                handle?.Dispose();
            }
        }
        foreach (string journal in journals)
        {
            File.Delete(journal);
        }
        DirectorySync.Sync(directory);
        return (entries, journals.Count);
    }

    /// <summary>Whether log writes go through the journal now, or it is being switched off (tests, metrics).</summary>
    public bool Active => Mode != Direct;

    private int Mode => Volatile.Read(ref _mode);

    /// <summary>
    /// Called by the commit scheduler with how many partitions each round commits: picks the way log writes go.
    /// </summary>
    public void ObserveRound(int partitions)
    {
        _partitionsPerRound += (partitions - _partitionsPerRound) / 8;
        if (Mode == Direct && _partitionsPerRound > _journalAbove)
        {
            // Nothing to do first: what is journaled from now on is newer than every direct write.
            Interlocked.CompareExchange(ref _mode, Journal, Direct);
        }
        else if (Mode == Journal && _partitionsPerRound < _journalAbove / 2 && !_directWanted)
        {
            _directWanted = true;
            _wake.Release();
        }
    }

    /// <summary>
    /// A log write is about to be issued: true when it is to be journaled (made through the page cache, then
    /// <see cref="Append"/>ed, then ended with <see cref="EndWrite"/>), false when it is to be written and synced directly. Waits while the
    /// journal is being switched off.
    /// </summary>
    public bool BeginWrite()
    {
        while (true)
        {
            switch (Mode)
            {
                case Journal:
                    Interlocked.Increment(ref _journaling);
                    if (Mode == Journal)
                    {
                        return true;
                    }
                    Interlocked.Decrement(ref _journaling);
                    break;
                case Direct:
                    return false;
                default:
                    _switched.Wait();
                    break;
            }
        }
    }

    /// <summary>Ends a write <see cref="BeginWrite"/> sent to the journal, once its entry is queued (or its write failed).</summary>
    public void EndWrite() => Interlocked.Decrement(ref _journaling);

    /// <summary>
    /// Queues a write already made through the page cache at <paramref name="offset"/> of <paramref name="path"/>;
    /// <paramref name="done"/> is called (on the thread pool) once it is durable, with null, or with the failure.
    /// </summary>
    public void Append(string path, long offset, ReadOnlySpan<byte> data, Action<Exception?> done)
    {
        string relative = Path.GetRelativePath(_root, path);
        int pathBytes = Encoding.UTF8.GetByteCount(relative);
        lock (_lock)
        {
            if (_failure is not null || _stopping)
            {
                var failure = _failure ?? new ObjectDisposedException(nameof(WriteJournal));
                ThreadPool.UnsafeQueueUserWorkItem(static state => state.done(state.failure), (done, failure), preferLocal: false);
                return;
            }
            var span = _queued.Reserve(Header + pathBytes + data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
            BinaryPrimitives.WriteInt32LittleEndian(span[8..], data.Length);
            BinaryPrimitives.WriteInt32LittleEndian(span[12..], pathBytes);
            BinaryPrimitives.WriteInt64LittleEndian(span[16..], offset);
            Encoding.UTF8.GetBytes(relative, span[Header..]);
            data.CopyTo(span[(Header + pathBytes)..]);
            BinaryPrimitives.WriteUInt32LittleEndian(span[4..], Crc32C.Compute(span[8..]));
            _queued.Done.Add(done);
            _written.Add(path);
        }
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (ObjectDisposedException)
        {
            // Closed meanwhile: the entry is failed by the close, never left waiting.
        }
    }

    /// <summary>
    /// Makes every file written so far durable by itself and starts a new journal file, so that nothing written
    /// before is replayed: before a topic's folder is removed (a topic of the same name made later must never be
    /// written with it), and on close.
    /// </summary>
    public void Checkpoint()
    {
        lock (_writeLock)
        {
            _checkpoint.GetAwaiter().GetResult();
            WriteQueued(); // what is queued belongs to the files synced now
            if (_failure is not null || !Rotate(wait: true))
            {
                throw new IOException($"The write journal failed: {_failure?.Message}", _failure);
            }
        }
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }
        _stopping = true;
        _wake.Release();
        _thread.Join();
        try
        {
            _checkpoint.GetAwaiter().GetResult();
            if (_failure is null)
            {
                // Everything is in its file: a graceful stop leaves no journal to replay.
                SyncFiles(TakeWritten());
                _file.Dispose();
                File.Delete(FilePath(_sequence));
                DirectorySync.Sync(_directory);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogCheckpointFailed(_logger, ex.Message); // replayed at the next start
        }
        finally
        {
            _file.Dispose();
            _wake.Dispose();
            _switched.Set();
        }
    }

    private void Run()
    {
        while (true)
        {
            if (!_stopping)
            {
                _wake.Wait();
            }
            lock (_writeLock)
            {
                WriteQueued();
                if (_directWanted)
                {
                    SwitchToDirect();
                }
                else if (_failure is null && _fileBytes >= RotateBytes && _checkpoint.IsCompleted)
                {
                    Rotate(wait: false);
                }
            }
            if (_stopping)
            {
                lock (_lock)
                {
                    if (_queued.Length == 0)
                    {
                        return;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Holds new log writes, lets the journaled ones under way queue their entries, writes them, syncs every file the
    /// journal describes and starts an empty journal file; then log writes go directly. Under <c>_writeLock</c>.
    /// </summary>
    private void SwitchToDirect()
    {
        _directWanted = false;
        if (_failure is not null || Interlocked.CompareExchange(ref _mode, Switching, Journal) != Journal)
        {
            return; // a failed journal stays on, failing every write: nothing may be written past what it holds
        }
        // The exchange is a full fence: a writer that saw Journal has already counted itself in _journaling.
        _switched.Reset();
        bool switched = false;
        try
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _journaling) > 0)
            {
                spin.SpinOnce();
            }
            _checkpoint.GetAwaiter().GetResult();
            WriteQueued();
            switched = _failure is null && Rotate(wait: true);
        }
        finally
        {
            Volatile.Write(ref _mode, switched ? Direct : Journal);
            _switched.Set();
        }
    }

    /// <summary>Writes what is queued in one write and one sync, then tells who waits on it. Under <c>_writeLock</c>.</summary>
    private void WriteQueued()
    {
        Batch batch;
        lock (_lock)
        {
            batch = _queued;
            _queued = _spare;
            _spare = batch;
        }
        if (batch.Length == 0)
        {
            return;
        }
        Exception? failure = _failure;
        if (failure is null)
        {
            try
            {
                DataSync.Write(_file, batch.Bytes.AsSpan(0, batch.Length), _fileBytes);
                _fileBytes += batch.Length;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                failure = Fail(ex);
            }
        }
        foreach (var done in batch.Done)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.done(state.failure), (done, failure), preferLocal: false);
        }
        batch.Clear();
    }

    private Exception Fail(Exception ex)
    {
        lock (_lock)
        {
            _failure ??= ex;
        }
        LogWriteFailed(_logger, ex.Message);
        return ex;
    }

    /// <summary>
    /// Starts a new journal file and syncs the files the old one describes, then removes it: at once when
    /// <paramref name="wait"/>, else in the background. Under <c>_writeLock</c>, between two writes of the journal.
    /// Entries queued meanwhile go to the new file; the files they were written to are synced with the old one's too
    /// (their writes came first), which only makes their replay unneeded.
    /// </summary>
    private bool Rotate(bool wait)
    {
        SafeFileHandle old = _file;
        long oldSequence = _sequence;
        try
        {
            _file = NewFile(_sequence + 1);
            _fileBytes = 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _file = old;
            _sequence = oldSequence;
            Fail(ex);
            return false;
        }
        var written = TakeWritten();
        if (wait)
        {
            return Retire(old, oldSequence, written);
        }
        _checkpoint = Task.Run(() => Retire(old, oldSequence, written));
        return true;
    }

    /// <summary>
    /// Syncs the files a journal file describes, then removes it, durably (its directory synced: a journal file that
    /// came back after a power cut would be replayed over what was written since). A failure fails the journal: the
    /// old file stays (replayed at the next start) and nothing is acknowledged from then on, since a later journal
    /// file could be retired without it.
    /// </summary>
    private bool Retire(SafeFileHandle old, long sequence, HashSet<string> written)
    {
        try
        {
            SyncFiles(written);
            old.Dispose();
            File.Delete(FilePath(sequence));
            DirectorySync.Sync(_directory);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            old.Dispose();
            LogCheckpointFailed(_logger, ex.Message);
            Fail(ex);
            return false;
        }
    }

    private HashSet<string> TakeWritten()
    {
        lock (_lock)
        {
            var written = new HashSet<string>(_written, StringComparer.Ordinal);
            _written.Clear();
            return written;
        }
    }

    private void SyncFiles(HashSet<string> paths)
    {
        foreach (string path in paths)
        {
            SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                continue; // removed since (retention, a deleted topic): nothing of it is read again
            }
            using (handle)
            {
                DataSync.Flush(handle);
                if (_dropSynced)
                {
                    PageCache.Drop(handle, 0, 0); // clean now: the written pages need not stay cached
                }
            }
        }
    }

    private SafeFileHandle NewFile(long sequence)
    {
        _sequence = sequence;
        string path = FilePath(sequence);
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, DataSync.Options);
        DirectorySync.SyncParentOf(path);
        return handle;
    }

    private string FilePath(long sequence) => Path.Combine(_directory, sequence.ToString("D20", CultureInfo.InvariantCulture) + Extension);

    private static bool TryReadEntry(FileStream stream, out string path, out long offset, out byte[] data)
    {
        path = "";
        offset = 0;
        data = [];
        Span<byte> header = stackalloc byte[Header];
        if (stream.ReadAtLeast(header, Header, throwOnEndOfStream: false) < Header || BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
        {
            return false;
        }
        int dataLength = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        int pathLength = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        if (dataLength < 0 || pathLength is < 1 or > 4096 || (long)dataLength + pathLength > stream.Length - stream.Position)
        {
            return false;
        }
        var entry = new byte[Header + pathLength + dataLength];
        header.CopyTo(entry);
        if (stream.ReadAtLeast(entry.AsSpan(Header), pathLength + dataLength, throwOnEndOfStream: false) < pathLength + dataLength
            || Crc32C.Compute(entry.AsSpan(8)) != BinaryPrimitives.ReadUInt32LittleEndian(header[4..]))
        {
            return false;
        }
        path = Encoding.UTF8.GetString(entry, Header, pathLength);
        offset = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        data = entry[(Header + pathLength)..];
        return true;
    }

    /// <summary>Entries queued for the journal's next write: their bytes, one after another, and who waits on them.</summary>
    private sealed class Batch
    {
        public byte[] Bytes { get; private set; } = new byte[64 << 10];

        public int Length { get; private set; }

        public List<Action<Exception?>> Done { get; } = [];

        public Span<byte> Reserve(int bytes)
        {
            if (Length + bytes > Bytes.Length)
            {
                var larger = new byte[Math.Max(Bytes.Length * 2, Length + bytes)];
                Bytes.AsSpan(0, Length).CopyTo(larger);
                Bytes = larger;
            }
            var span = Bytes.AsSpan(Length, bytes);
            Length += bytes;
            return span;
        }

        public void Clear()
        {
            Length = 0;
            Done.Clear();
        }
    }

    [LoggerMessage(EventId = 230, Level = LogLevel.Warning, Message = "Replayed {Entries} write(s) from {Files} journal file(s) left by a stop that was not graceful")]
    private static partial void LogReplayed(ILogger logger, long entries, int files);

    [LoggerMessage(EventId = 231, Level = LogLevel.Error, Message = "The write journal failed: {Reason}; no log write is acknowledged from now on")]
    private static partial void LogWriteFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 232, Level = LogLevel.Warning, Message = "A write journal checkpoint failed: {Reason}; its journal file is replayed at the next start")]
    private static partial void LogCheckpointFailed(ILogger logger, string reason);
}
