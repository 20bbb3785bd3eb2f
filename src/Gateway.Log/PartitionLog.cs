using FASTER.core;
using Gateway.Log.Device;
using Gateway.Storage;
using Gateway.Storage.Records;
using Microsoft.Extensions.Logging;

namespace Gateway.Log;

/// <summary>
/// One partition: an append-only sequence of records with dense offsets, stored as record batches in one FasterLog.
/// Guarantees: offsets are assigned in append order and never reused; readers see only records a finished commit
/// covers (the high watermark, <see cref="EndOffset"/>); an <see cref="Acks.Disk"/> append returns only after such
/// a commit; a commit failure fails the appends it covered and every append after it.
/// </summary>
public sealed partial class PartitionLog : IPartition, IAsyncDisposable
{
    private readonly LogStoreOptions _options;
    private readonly CommitScheduler _scheduler;
    private readonly DiskSpaceGuard _diskSpace;
    private readonly WriteJournal? _journal;
    private readonly TimeProvider _time;
    private readonly IdempotencyWindow _idempotency;
    private readonly ProducerStates _producers;
    private readonly ILogger _logger;
    private readonly string _directory;
    private readonly int _pageSizeBits; // the page size its log was made with (LogLayout)
    private readonly int _memorySizeBits;
    private readonly OffsetIndex _index;
    private readonly Lock _appendLock = new();
    private readonly SemaphoreSlim _commitGate = new(1, 1);
    private readonly SemaphoreSlim _verificationGate;
    // The open log, or null while the partition is at rest (PartitionLog.Rest.cs): set and cleared under _wakeLock.
    private FasterLog? _log;
    private SegmentFileDevice? _device;
    private CommitRecord? _commitManager;

    // Guarded by _appendLock.
    private long _nextOffset;
    private long _maxTimestamp = long.MinValue;
    private CommitWaiters _pendingCommit = new();
    private long _issuedOffset; // the next offset of the last commit issued

    // Guarded by _commitGate: completes once the last commit issued is published (true) or has failed (false).
    private Task<bool> _lastCommit = Task.FromResult(true);

    private CommitPoint _committed;
    private long _beginOffset;
    private TaskCompletionSource _committedSignal = NewSignal();
    private Exception? _failure;
    private int _dirty;
    private int _tailWaiting; // someone waits on the current commit signal: appends commit at once
    private volatile bool _closed;
    private volatile bool _closing;

    // Recovery checkpoints (RecoveryCheckpoint): the address of the last one written, and the write under way.
    private long _checkpointAddress;
    private int _checkpointing;
    private Task _checkpointWrite = Task.CompletedTask;

    // The log below a loaded checkpoint is verified in the background once the partition serves.
    private readonly CancellationTokenSource _closeSource = new();
    private readonly TaskCompletionSource _verified = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _verification = Task.CompletedTask;

    private PartitionLog(string topic, int partition, string directory, LogStoreOptions options, PartitionServices services, bool fresh)
    {
        Topic = topic;
        Partition = partition;
        _directory = directory;
        _options = options;
        _scheduler = services.Scheduler;
        _diskSpace = services.DiskSpace;
        _journal = services.Journal;
        _logger = services.Logger;
        _time = services.Time;
        _verificationGate = services.Verification;
        _idempotency = new IdempotencyWindow(options.IdempotencyKeysPerPartition, TimeSpan.FromMilliseconds(options.IdempotencyWindowMs), services.Time);
        _producers = new ProducerStates(options.ProducersPerPartition, TimeSpan.FromMilliseconds(options.ProducerIdExpirationMs), services.Time);
        _index = new OffsetIndex(options.IndexIntervalBytes);
        _committed = new CommitPoint(0, 0);
        _lastUsed = Environment.TickCount64;
        DirectorySync.CreateDirectory(directory);
        try
        {
            _pageSizeBits = LogLayout.PageSizeBits(directory, fresh, options.PageSizeBits, options.LegacyPageSizeBits);
        }
        catch (Exception ex) when (ex is LogCorruptedException or IOException or UnauthorizedAccessException)
        {
            _pageSizeBits = LogLayout.LegacyPageSizeBits;
            _failure = ex as LogCorruptedException ?? new LogCorruptedException($"Partition {topic}/{partition} could not be opened: {ex.Message}", ex);
            LogRecoveryFailed(_logger, topic, partition, _failure.Message);
            _verified.TrySetResult();
            return;
        }
        // As many pages as the store's settings give a log, of the partition's own size.
        _memorySizeBits = _pageSizeBits + (options.MemorySizeBits - options.PageSizeBits);
        if (fresh && options.OpenAtRest && options.PartitionIdleMs > 0)
        {
            MakeAtRest();
            return;
        }
        if (!fresh && options.OpenAtRest && TryOpenAtRest())
        {
            return;
        }
        OpenLog(fresh);
    }

    /// <summary>Opens the partition's log and recovers it (or, <paramref name="fresh"/>, makes it); a failure leaves the partition failed.</summary>
    private void OpenLog(bool fresh)
    {
        string topic = Topic;
        int partition = Partition;
        var options = _options;
        string directory = _directory;
        try
        {
            _device = new SegmentFileDevice(Path.Combine(directory, "data.log"), $"log {topic}/{partition}", options.CacheWrittenData, _journal);
            _commitManager = new CommitRecord(directory);
            _log = new FasterLog(Settings(_device, _commitManager));
            Recover(fresh);
        }
        catch (Exception ex) when (ex is FasterException or LogCorruptedException or IOException)
        {
            _failure = ex as LogCorruptedException
                ?? (_device?.MissingSegment is int missing
                    ? new LogCorruptedException($"Partition {topic}/{partition} is damaged: a segment file is missing: data.log.{missing}, part of the committed range, is gone.")
                    : new LogCorruptedException($"Partition {topic}/{partition} could not be recovered: {ex.Message}"));
            LogRecoveryFailed(_logger, topic, partition, _failure.Message);
        }
    }

    public string Topic { get; }

    /// <summary>
    /// The largest batch one append may write: the store's limit, and never more than the partition's own page holds
    /// (a partition made with smaller pages than the store's now).
    /// </summary>
    private int MaxBatchBytes => Math.Min(_options.MaxBatchBytes, LogStoreOptions.BatchBytesInPage(_pageSizeBits));

    public int Partition { get; }

    /// <summary>First offset still kept.</summary>
    public long BeginOffset => Math.Min(Volatile.Read(ref _beginOffset), EndOffset);

    /// <summary>The high watermark: one past the last committed record. Readers never see offsets at or above it.</summary>
    public long EndOffset => Volatile.Read(ref _committed).Offset;

    /// <summary>Bytes the partition's log occupies between its begin and tail.</summary>
    public long SizeBytes
    {
        get
        {
            lock (_wakeLock)
            {
                return _log is null ? Math.Max(0, Volatile.Read(ref _committed).Address - _restBeginAddress) : Math.Max(0, _log.TailAddress - _log.BeginAddress);
            }
        }
    }

    /// <summary>Bytes the partition's segment files take on disk.</summary>
    public long SizeOnDiskBytes
    {
        get
        {
            try
            {
                return new DirectoryInfo(_directory).EnumerateFiles("data.log.*").Sum(f => f.Length);
            }
            catch (IOException)
            {
                return 0;
            }
        }
    }

    /// <summary>Entries in the sparse offset index (for tests of the index).</summary>
    internal int IndexEntries => _index.Count;

    /// <summary>Why the partition cannot serve, or null when it can.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    internal static PartitionLog Open(string topic, int partition, string directory, LogStoreOptions options, PartitionServices services, bool create) =>
        new(topic, partition, directory, options, services, create);

    /// <summary>
    /// Appends a sealed batch as one entry and returns its base offset. With <paramref name="expectedEndOffset"/>,
    /// appends only if every earlier append ends there (optimistic concurrency). Once the log holds the batch (or an
    /// earlier append of the same idempotent request answers it), the builder's buffer goes back to the pool, before
    /// the commit is awaited: it cannot be appended again.
    /// </summary>
    public async ValueTask<long> AppendAsync(RecordBatchBuilder batch, Acks acks, long? expectedEndOffset = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        batch.Seal();
        if (batch.SizeInBytes > MaxBatchBytes)
        {
            throw new BatchTooLargeException(batch.SizeInBytes, MaxBatchBytes);
        }
        _diskSpace.EnsureRoomFor(batch.SizeInBytes);
        long baseOffset = 0;
        Task? committed = null;
        IdempotentBatch? replay = null;
        using (Enter())
        {
            while (committed is null && replay is null)
            {
                lock (_appendLock)
                {
                    ThrowIfUnavailable();
                    if (batch.Stamp is { } stamp && _idempotency.TryGet(stamp.ProducerId, out var earlier))
                    {
                        // The same request, retried: it was appended once; answer where it went (below, once committed).
                        replay = earlier.RequestHash == stamp.RequestHash ? earlier : throw new IdempotencyKeyReusedException();
                        break;
                    }
                    if (batch.Producer is { } retried && _producers.IsDuplicate(retried, out var original))
                    {
                        // A Kafka producer's retry of one of its last batches: answered with the original offsets.
                        replay = original;
                        break;
                    }
                    if (expectedEndOffset is long expected && expected != _nextOffset)
                    {
                        throw new OffsetMismatchException(expected, _nextOffset);
                    }
                    baseOffset = _nextOffset;
                    long address;
                    bool appended;
                    try
                    {
                        appended = _log!.TryEnqueue((ReadOnlySpan<byte>)batch.SealedBatch(baseOffset), out address);
                    }
                    catch (FasterException ex)
                    {
                        throw new StorageFailureException($"Append to {Topic}/{Partition} failed: {ex.Message}", ex);
                    }
                    if (appended)
                    {
                        _index.OnAppend(baseOffset, address, _maxTimestamp);
                        _maxTimestamp = Math.Max(_maxTimestamp, batch.MaxTimestamp);
                        _nextOffset = baseOffset + batch.Count;
                        if (batch.Stamp is { } appendedStamp)
                        {
                            _idempotency.Remember(appendedStamp, baseOffset, batch.Count, _time.GetUtcNow().ToUnixTimeMilliseconds());
                        }
                        if (batch.Producer is { } producer)
                        {
                            _producers.Record(producer, baseOffset, _time.GetUtcNow().ToUnixTimeMilliseconds());
                        }
                        committed = _pendingCommit.Task;
                    }
                }
                if (committed is null && replay is null)
                {
                    // The log's memory is full until earlier pages reach the disk. Wait without holding the lock or a
                    // thread: FasterLog's own Enqueue spins here, which starves the pool that completes those writes.
                    await Task.Delay(1, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        // The log holds its own copy, or an earlier append answers the request: no wait below needs the buffer.
        batch.ReturnBuffer();
        if (replay is { } earlierBatch)
        {
            await WaitForCommittedAsync(earlierBatch.BaseOffset + earlierBatch.Count, cancellationToken).ConfigureAwait(false);
            return earlierBatch.BaseOffset;
        }
        // A durable append waits for its commit; so does a reader waiting at the tail: either one makes it urgent.
        _scheduler.Schedule(this, urgent: acks != Acks.Memory || Volatile.Read(ref _tailWaiting) != 0);
        if (acks != Acks.Memory) // anything but memory waits for the disk, even a value no parser should let through
        {
            await committed!.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        return baseOffset;
    }

    /// <summary>
    /// Waits until every offset below <paramref name="endOffset"/> is committed (an earlier append answered again),
    /// asking for the commit; throws if the partition fails or closes first.
    /// </summary>
    public async Task WaitForCommittedAsync(long endOffset, CancellationToken cancellationToken = default)
    {
        while (EndOffset < endOffset)
        {
            _scheduler.Schedule(this, urgent: true);
            if (!await WaitForRecordAsync(endOffset - 1, cancellationToken).ConfigureAwait(false))
            {
                ThrowIfUnavailable();
                throw new StorageFailureException($"Partition {Topic}/{Partition} closed before offset {endOffset - 1} was committed.");
            }
        }
    }

    /// <summary>The batch an idempotent request with this producer id appended, while the window remembers it.</summary>
    public bool TryGetIdempotent(long producerId, out IdempotentBatch batch)
    {
        if (Unrecovered)
        {
            using (Enter())
            {
                // The remembered keys come with the log's recovery.
            }
        }
        return _idempotency.TryGet(producerId, out batch);
    }

    /// <summary>Waits until the records of every append so far are committed.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        Task committed;
        lock (_appendLock)
        {
            ThrowIfUnavailable();
            if (_nextOffset == EndOffset)
            {
                return;
            }
            committed = _pendingCommit.Task;
        }
        _scheduler.Schedule(this, urgent: true);
        await committed.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Completes the current commit signal and starts the next; its waiters say again that they wait.</summary>
    private void SignalCommitted()
    {
        Volatile.Write(ref _tailWaiting, 0);
        Interlocked.Exchange(ref _committedSignal, NewSignal()).TrySetResult();
    }

    /// <summary>Commits, then closes the log. Appends after this fail.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_closed)
        {
            return;
        }
        lock (_appendLock)
        {
            // No append may slip in after the final commit and be acknowledged, then lost.
            _closing = true;
        }
        try
        {
            await CommitAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is StorageFailureException or FasterException)
        {
            LogCloseCommitFailed(_logger, Topic, Partition, ex.Message);
        }
        await _closeSource.CancelAsync().ConfigureAwait(false);
        await _verification.ConfigureAwait(false);
        await _commitGate.WaitAsync().ConfigureAwait(false);
        // No commit is issued from here on; the last one issued is published, or has failed, before the log closes.
        await _lastCommit.ConfigureAwait(false);
        if (IsOpen)
        {
            // A graceful stop leaves a checkpoint at the end: the next start reads nothing before serving. (A partition
            // at rest left its own when it closed, or was made or started at rest and has its checkpoint on disk.)
            await CheckpointCommittedAsync().ConfigureAwait(false);
        }
        lock (_appendLock)
        {
            _closed = true;
            _pendingCommit.Release(new StorageFailureException($"Partition {Topic}/{Partition} is closed."));
        }
        lock (_wakeLock)
        {
            CloseLog();
        }
        Volatile.Read(ref _committedSignal).TrySetResult();
        _commitGate.Release();
    }

    internal bool TryMarkDirty() => Interlocked.CompareExchange(ref _dirty, 1, 0) == 0;

    /// <summary>Where the last recovery started reading the log: the begin address, or a recovery checkpoint's address.</summary>
    internal long RecoveredFromAddress { get; private set; }

    /// <summary>Log address where the partition begins (for tests of recovery).</summary>
    internal long BeginAddress
    {
        get
        {
            lock (_wakeLock)
            {
                return _log?.BeginAddress ?? _restBeginAddress;
            }
        }
    }

    /// <summary>Completes when the log below the recovery checkpoint has been verified (at once when there was none to verify).</summary>
    internal Task Verified => _verified.Task;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The partition's damage, which from now on it answers every request with.</summary>
    private LogCorruptedException Corrupted(string detail) => MarkFailed(Damaged(detail));

    /// <summary>Damage found by a read, not yet the partition's: the read may have lost a race with a deletion.</summary>
    private LogCorruptedException Damaged(string detail) => new($"Partition {Topic}/{Partition} is damaged: {detail}.");

    private LogCorruptedException MarkFailed(LogCorruptedException failure)
    {
        Interlocked.CompareExchange(ref _failure, failure, null);
        return failure;
    }

    private void ThrowIfUnavailable()
    {
        if (Failure is { } failure)
        {
            throw failure is LogCorruptedException corrupted ? corrupted : new StorageFailureException(failure.Message, failure);
        }
        if (_closed || _closing)
        {
            throw new TopicNotFoundException(Topic);
        }
    }

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Recovered {Topic}/{Partition}: offsets [{BeginOffset}, {EndOffset}), {Batches} batches read from address {FromAddress}")]
    private static partial void LogRecovered(ILogger logger, string topic, int partition, long beginOffset, long endOffset, int batches, long fromAddress);

    [LoggerMessage(EventId = 106, Level = LogLevel.Information, Message = "Recovered {Topic}/{Partition} past its commit record: {Bytes} bytes of entries that check, offsets [{FromOffset}, {ToOffset})")]
    private static partial void LogTailRecovered(ILogger logger, string topic, int partition, long bytes, long fromOffset, long toOffset);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "Verified {Topic}/{Partition}: {Bytes} bytes below the recovery checkpoint")]
    private static partial void LogVerified(ILogger logger, string topic, int partition, long bytes);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning, Message = "Recovery checkpoint of {Topic}/{Partition} not written: {Reason}")]
    private static partial void LogCheckpointFailed(ILogger logger, string topic, int partition, string reason);

    [LoggerMessage(EventId = 101, Level = LogLevel.Critical, Message = "Partition {Topic}/{Partition} cannot serve: {Reason}")]
    private static partial void LogRecoveryFailed(ILogger logger, string topic, int partition, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Critical, Message = "Commit of {Topic}/{Partition} failed; the partition refuses appends until restart: {Reason}")]
    private static partial void LogCommitFailed(ILogger logger, string topic, int partition, string reason);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "Final commit of {Topic}/{Partition} failed on close: {Reason}")]
    private static partial void LogCloseCommitFailed(ILogger logger, string topic, int partition, string reason);

    /// <summary>The high watermark and the log address that holds exactly the records below it.</summary>
    private sealed record CommitPoint(long Offset, long Address);
}
