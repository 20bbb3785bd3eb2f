using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Gateway.Log.Device;
using Gateway.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gateway.Log;

/// <summary>
/// All topics under one data directory (<c>{DataDirectory}/topics/{topic}/{partition}/</c>), reopened on start.
/// Creating and deleting topics is serialized; reads and appends on existing topics never wait for it.
/// Disposing commits everything appended, then closes the logs.
/// </summary>
public sealed partial class LogStore : ILogStorage, IAsyncDisposable, IStorageFigures
{
    private StorageLimits? _limits;
    private readonly ConcurrentDictionary<string, TopicLog> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, LogCorruptedException> _refused = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _admin = new(1, 1);
    private readonly LogStoreOptions _options;
    private readonly CommitScheduler _scheduler;
    private readonly PartitionServices _services;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _topicsDirectory;
    private readonly string _trashDirectory;
    private readonly DataDirectoryLock _directoryLock;
    private readonly WriteJournal? _journal;
    private readonly ProducerIdBlock _producerIds;
    private bool _disposed;
    private int _verificationStarted;
    private readonly CancellationTokenSource _stopResting = new();
    private Task _resting = Task.CompletedTask;
    private Task _verifyingAtRest = Task.CompletedTask;

    private LogStore(LogStoreOptions options, DataDirectoryLock directoryLock, TimeProvider time, ILogger logger)
    {
        _options = options;
        _directoryLock = directoryLock;
        _time = time;
        _logger = logger;
        _topicsDirectory = Path.Combine(options.DataDirectory, "topics");
        _trashDirectory = Path.Combine(options.DataDirectory, "trash");
        _producerIds = new ProducerIdBlock(options.DataDirectory);
        _scheduler = new CommitScheduler(TimeSpan.FromMilliseconds(options.FlushIntervalMs), logger);
        DirectorySync.CreateDirectory(options.DataDirectory);
        // Before any partition opens: what the journal holds of a stop that was not graceful goes back into the files.
        _journal = options.WriteJournal && DataSync.Supported
            ? WriteJournal.Open(options.DataDirectory, options.JournalRotateBytes, options.JournalAbovePartitions, dropSynced: !options.CacheWrittenData, logger)
            : null;
        if (_journal is null)
        {
            WriteJournal.Replay(options.DataDirectory); // one left by a run with the journal on
        }
        _scheduler.Journal = _journal;
        _services = new PartitionServices(_scheduler, new DiskSpaceGuard(options.DataDirectory, options.MinFreeDiskBytes, time), time, logger, _journal);
    }

    /// <summary>Conditional appends, durable idempotency keys and Kafka idempotent producers: all kept in the log itself.</summary>
    public StorageCapabilities Capabilities =>
        StorageCapabilities.ConditionalAppend | StorageCapabilities.IdempotencyKeys | StorageCapabilities.IdempotentProducers | StorageCapabilities.TopicAcks;

    /// <inheritdoc />
    public ValueTask<long> NewProducerIdAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(_producerIds.Next());

    public StorageLimits Limits => _limits ??= new StorageLimits(_options.MaxBatchBytes, _options.MaxRecordBytesLimit, _options.TopicDefaults);

    IReadOnlyCollection<ITopic> ILogStorage.Topics => Topics;

    ITopic ILogStorage.GetTopic(string name) => GetTopic(name);

    bool ILogStorage.TryGetTopic(string name, [NotNullWhen(true)] out ITopic? topic)
    {
        bool found = TryGetTopic(name, out var log);
        topic = log;
        return found;
    }

    async Task<ITopic> ILogStorage.CreateTopicAsync(string name, int partitions, TopicConfig? config, CancellationToken cancellationToken) =>
        await CreateTopicAsync(name, partitions, config, cancellationToken).ConfigureAwait(false);

    async Task<ITopic> ILogStorage.UpdateTopicAsync(string name, TopicConfig? config, int? partitions, CancellationToken cancellationToken) =>
        await UpdateTopicAsync(name, config, partitions, cancellationToken).ConfigureAwait(false);

    public LogStoreOptions Options => _options;

    /// <summary>Told the duration of every commit round (metrics).</summary>
    public Action<TimeSpan>? CommitObserver
    {
        get => _scheduler.RoundObserver;
        set => _scheduler.RoundObserver = value;
    }

    public IReadOnlyCollection<TopicLog> Topics => [.. _topics.Values.OrderBy(t => t.Name, StringComparer.Ordinal)];

    /// <summary>
    /// Opens (and recovers) every topic in the data directory. A damaged partition opens failed, never empty.
    /// Logs below recovery checkpoints are verified in the background from <see cref="StartVerification"/> on, which
    /// this calls unless <paramref name="startVerification"/> is false (a server calls it once it serves).
    /// The store holds the data directory's lock until it is disposed: <paramref name="directoryLock"/>, taken by the
    /// caller beforehand, or else taken here first of all (<see cref="DataDirectoryLockedException"/> when another
    /// holds it, before anything in the directory is opened).
    /// </summary>
    public static async Task<LogStore> OpenAsync(
        LogStoreOptions options,
        TimeProvider? time = null,
        ILogger? logger = null,
        bool startVerification = true,
        DataDirectoryLock? directoryLock = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        directoryLock ??= DataDirectoryLock.Acquire(options.DataDirectory);
        LogStore store;
        try
        {
            store = new LogStore(options, directoryLock, time ?? TimeProvider.System, logger ?? NullLogger.Instance);
        }
        catch
        {
            directoryLock.Dispose();
            throw;
        }
        try
        {
            await store._services.Verification.WaitAsync(cancellationToken).ConfigureAwait(false);
            await Task.Run(
                () =>
                {
                    using var hugePages = store.HugePagesWhileOpening();
                    store.LoadTopics();
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            store.StartVerification();
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        if (startVerification)
        {
            store.StartVerification();
        }
        if (options.PartitionIdleMs > 0)
        {
            store._resting = store.RestIdleLoopAsync();
        }
        return store;
    }

    /// <summary>Lets the background verifications begin (once; later calls do nothing).</summary>
    public void StartVerification()
    {
        if (Interlocked.Exchange(ref _verificationStarted, 1) == 0)
        {
            _services.Verification.Release();
            _verifyingAtRest = Task.Run(VerifyAtRestAsync);
        }
    }

    /// <summary>The partitions that started at rest, verified from their files one at a time (see <see cref="PartitionLog"/>'s VerifyAtRestAsync).</summary>
    private async Task VerifyAtRestAsync()
    {
        try
        {
            foreach (var topic in _topics.Values)
            {
                foreach (var partition in topic.Partitions)
                {
                    await partition.VerifyAtRestAsync(_stopResting.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// The topic; <see cref="TopicNotFoundException"/> when there is none, <see cref="LogCorruptedException"/> when
    /// its folder is there but its <c>topic.json</c> was refused at start.
    /// </summary>
    public TopicLog GetTopic(string name) =>
        _topics.TryGetValue(name, out var topic) ? topic
        : _refused.TryGetValue(name, out var refusal) ? throw new LogCorruptedException(refusal.Message, refusal)
        : throw new TopicNotFoundException(name);

    public bool TryGetTopic(string name, out TopicLog topic) => _topics.TryGetValue(name, out topic!);

    /// <summary>
    /// Whether the topic exists, serving or not: a topic whose <c>topic.json</c> was refused at start still exists
    /// (its files, and what others keep about it such as committed offsets, stay) until it is deleted.
    /// </summary>
    public bool TopicExists(string name) => _topics.ContainsKey(name) || _refused.ContainsKey(name);

    /// <summary>Partitions that cannot serve, with the reason: what readiness reports.</summary>
    /// A topic refused whole (its <c>topic.json</c>) is listed with partition -1.
    public IReadOnlyList<(string Topic, int Partition, string Reason)> Failures =>
        [
            .. _refused.Select(r => (r.Key, -1, r.Value.Message)),
            .. _topics.Values.SelectMany(t => t.Partitions).Where(p => p.Failure is not null).Select(p => (p.Topic, p.Partition, p.Failure!.Message)),
        ];

    /// <summary>The write journal (<see cref="LogStoreOptions.WriteJournal"/>), null without one.</summary>
    internal WriteJournal? Journal => _journal;

    /// <summary>Whether log writes go through the write journal now (commit rounds cover several partitions).</summary>
    public bool JournalActive => _journal?.Active ?? false;

    /// <inheritdoc />
    public IReadOnlyList<StorageFigure> Figures =>
    [
        new("gateway_log_open_partitions", "Partitions whose log is open now; the others are at rest and hold no log memory.", OpenPartitions),
        new("gateway_write_journal_active", "1 while log writes are made durable by the store's write journal (commit rounds covering several partitions), 0 while each partition syncs its own.", JournalActive ? 1 : 0),
    ];

    /// <summary>Partitions whose log is open now (the rest are at rest: <see cref="LogStoreOptions.PartitionIdleMs"/>).</summary>
    public int OpenPartitions => _topics.Values.Sum(t => t.Partitions.Count(p => p.IsOpen));

    /// <summary>The memory budget of the open logs (<see cref="LogStoreOptions.LogMemoryBytes"/>; 0 there: a quarter of what the process may use).</summary>
    /// <remarks>Each open log counts with the pages it has allocated (<see cref="PartitionLog.OpenMemoryBytes"/>).</remarks>
    public long LogMemoryBudget => _options.LogMemoryBytes > 0 ? _options.LogMemoryBytes : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4;

    /// <summary>
    /// Closes the logs of partitions unused for <see cref="LogStoreOptions.PartitionIdleMs"/>; then, while the open
    /// ones would hold more than the memory budget, the least recently used of those that are idle. Returns how many
    /// it closed.
    /// </summary>
    /// <param name="idleMs">how long unused counts as idle; default <see cref="LogStoreOptions.PartitionIdleMs"/></param>
    public int RestIdlePartitions(long? idleMs = null)
    {
        long now = Environment.TickCount64;
        long idle = idleMs ?? _options.PartitionIdleMs;
        int closed = 0;
        var open = new List<PartitionLog>();
        foreach (var topic in _topics.Values)
        {
            foreach (var partition in topic.Partitions)
            {
                if (!partition.IsOpen)
                {
                    continue;
                }
                if (partition.TryRest(now, idle, force: false))
                {
                    closed++;
                }
                else
                {
                    open.Add(partition);
                }
            }
        }
        long over = open.Sum(p => p.OpenMemoryBytes) - LogMemoryBudget;
        if (over > 0)
        {
            foreach (var partition in open.OrderBy(p => p.LastUsed))
            {
                if (over <= 0)
                {
                    break;
                }
                long holds = partition.OpenMemoryBytes;
                if (partition.TryRest(now, 0, force: true))
                {
                    closed++;
                    over -= holds;
                }
            }
        }
        return closed;
    }

    private async Task RestIdleLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Clamp(_options.PartitionIdleMs / 4, 50, 1_000)));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopResting.Token).ConfigureAwait(false))
            {
                await _admin.WaitAsync(_stopResting.Token).ConfigureAwait(false);
                try
                {
                    RestIdlePartitions();
                }
                finally
                {
                    _admin.Release();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Applies every topic's retention now; never blocks appends or reads while it works.</summary>
    public async Task ApplyRetentionAsync(CancellationToken cancellationToken = default)
    {
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var topic in _topics.Values)
        {
            foreach (var partition in topic.Partitions)
            {
                try
                {
                    if (await partition.ApplyRetentionAsync(topic.Config, now, cancellationToken).ConfigureAwait(false) is long begin)
                    {
                        LogRetentionApplied(_logger, topic.Name, partition.Partition, begin);
                    }
                }
                catch (Exception ex) when (ex is TopicNotFoundException or StorageFailureException or LogCorruptedException or OffsetOutOfRangeException)
                {
                    // Deleted meanwhile, or failed: readiness reports the failure; retention tries again next time.
                }
            }
        }
    }

    public async Task<TopicLog> CreateTopicAsync(string name, int partitions, TopicConfig? config = null, CancellationToken cancellationToken = default)
    {
        if (!TopicName.IsValid(name))
        {
            throw new ArgumentException($"'{name}' is not a valid topic name.", nameof(name));
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(partitions);
        await _admin.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_topics.ContainsKey(name) || _refused.ContainsKey(name))
            {
                throw new TopicExistsException(name);
            }
            string directory = Path.Combine(_topicsDirectory, name);
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
            EnsureThreadPool(TotalPartitions + partitions);
            var topic = await Task.Run(
                () =>
                {
                    using var hugePages = HugePagesWhileOpening();
                    return TopicLog.Create(name, partitions, config ?? _options.TopicDefaults, directory, _options, _services, _time.GetUtcNow().ToUnixTimeMilliseconds());
                },
                cancellationToken).ConfigureAwait(false);
            _topics[name] = topic;
            return topic;
        }
        finally
        {
            _admin.Release();
        }
    }

    /// <summary>Changes a topic's settings and/or grows its partitions.</summary>
    public async Task<TopicLog> UpdateTopicAsync(string name, TopicConfig? config, int? partitions, CancellationToken cancellationToken = default)
    {
        await _admin.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var topic = GetTopic(name);
            if (partitions is int count)
            {
                EnsureThreadPool(TotalPartitions + Math.Max(0, count - topic.PartitionCount));
            }
            topic.Update(config, partitions);
            return topic;
        }
        finally
        {
            _admin.Release();
        }
    }

    /// <summary>Deletes a topic and its files. Its waiting readers are released; later requests find no topic.</summary>
    public async Task DeleteTopicAsync(string name, CancellationToken cancellationToken = default)
    {
        await _admin.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_topics.TryRemove(name, out var topic))
            {
                await topic.CloseAsync().ConfigureAwait(false);
            }
            else if (!_refused.TryRemove(name, out _))
            {
                throw new TopicNotFoundException(name);
            }
            // Nothing the journal holds of the topic may be replayed once a topic of the same name can be made again.
            _journal?.Checkpoint();
            // A rename is atomic: a crash leaves the topic either whole or in the trash, never half deleted.
            DirectorySync.CreateDirectory(_trashDirectory);
            string trash = Path.Combine(_trashDirectory, Guid.NewGuid().ToString("N"));
            Directory.Move(Path.Combine(_topicsDirectory, name), trash);
            // Durable before the answer: a deleted topic must not come back after a power cut.
            DirectorySync.Sync(_topicsDirectory);
            Directory.Delete(trash, recursive: true);
        }
        finally
        {
            _admin.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _admin.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            try
            {
                await _stopResting.CancelAsync().ConfigureAwait(false);
                await _resting.ConfigureAwait(false);
                await _verifyingAtRest.ConfigureAwait(false);
                foreach (var topic in _topics.Values)
                {
                    await topic.CloseAsync().ConfigureAwait(false);
                }
                _topics.Clear();
                await _scheduler.DisposeAsync().ConfigureAwait(false);
                _journal?.Dispose();
            }
            finally
            {
                // Last, and whatever happened: no other store may open the directory while this one still writes.
                _directoryLock.Dispose();
            }
        }
        finally
        {
            _admin.Release();
        }
    }

    private int TotalPartitions => _topics.Values.Sum(t => t.PartitionCount);

    /// <summary>Huge pages for the heap while partitions allocate their log buffers (<see cref="LogStoreOptions.HugePages"/>).</summary>
    private HugePages.Scope HugePagesWhileOpening() => _options.HugePages ? HugePages.Open() : default;

    private void LoadTopics()
    {
        // Recovery itself waits for device reads completed on pool threads: without threads to spare the first one
        // waits for the pool to inject a thread, which the pool does slowly (figures: docs/storage.md).
        EnsureThreadPool(0);
        DirectorySync.CreateDirectory(_topicsDirectory);
        if (Directory.Exists(_trashDirectory))
        {
            Directory.Delete(_trashDirectory, recursive: true);
        }
        foreach (string directory in Directory.EnumerateDirectories(_topicsDirectory))
        {
            if (!File.Exists(Path.Combine(directory, TopicLog.MetadataFile)))
            {
                // A create that crashed before writing topic.json: it never existed.
                LogIncompleteTopicRemoved(_logger, directory);
                Directory.Delete(directory, recursive: true);
                continue;
            }
            try
            {
                var topic = TopicLog.Load(directory, _options, _services);
                _topics[topic.Name] = topic;
            }
            catch (LogCorruptedException ex)
            {
                // That topic alone is refused (readiness names it; requests for it fail): never served with other
                // settings than it was given, nor removed — deleting it is the operator's choice.
                _refused[Path.GetFileName(directory)] = ex;
                LogTopicRefused(_logger, directory, ex.Message);
            }
        }
        EnsureThreadPool(TotalPartitions);
    }

    /// <summary>
    /// Log reads run on each partition's own thread (<see cref="SegmentFileDevice"/>); its writes and FasterLog's
    /// commit-record writes block a pool thread each: one per partition committing at once, plus a few for requests
    /// and LiteDB's writes, are kept ready so that such a burst does not wait for the pool to inject threads. No more:
    /// every extra thread the pool keeps awake costs a machine with few cores in context switches, which shows in the
    /// latency of every request (figures: docs/storage.md).
    /// </summary>
    private const int MaxCommittingAtOnce = 1024;

    private static void EnsureThreadPool(int partitions)
    {
        int wanted = 8 + Math.Min(partitions, MaxCommittingAtOnce);
        ThreadPool.GetMinThreads(out int workers, out int io);
        if (workers < wanted)
        {
            ThreadPool.SetMinThreads(wanted, Math.Max(io, wanted));
        }
    }

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "Retention moved {Topic}/{Partition} to begin offset {BeginOffset}")]
    private static partial void LogRetentionApplied(ILogger logger, string topic, int partition, long beginOffset);

    [LoggerMessage(EventId = 302, Level = LogLevel.Error, Message = "Topic in {Directory} refused: {Reason}")]
    private static partial void LogTopicRefused(ILogger logger, string directory, string reason);

    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "Removed {Directory}: a topic whose creation did not finish")]
    private static partial void LogIncompleteTopicRemoved(ILogger logger, string directory);
}
