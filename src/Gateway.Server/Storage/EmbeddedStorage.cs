using Gateway.Groups;
using Gateway.Log;
using Gateway.Log.Device;
using Gateway.Server.Observability;
using Gateway.Storage;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Storage;

/// <summary>
/// Opens the log store and then the group coordinator — from <see cref="BeginOpen"/>, right after the host is built,
/// so that recovery runs while the request pipeline is set up and the server starts listening; the host's start
/// waits for it, requests wait for it (<see cref="WhenOpenAsync"/>) — and lets the store verify logs below recovery
/// checkpoints once the server has started; on shutdown, after the server has stopped taking requests, closes the
/// coordinator and commits and closes the log.
/// </summary>
internal sealed class EmbeddedStorage(
    IOptions<LogStoreOptions> logOptions,
    IOptions<GroupOptions> groupOptions,
    IHostEnvironment environment,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    GatewayMetrics metrics,
    ILoggerFactory loggers) : IStorageHost, IHostedService, IDisposable
{
    private LogStore? _store;
    private GroupCoordinator? _groups;
    private DataDirectoryLock? _directoryLock;

    public ILogStorage Store => _store ?? throw new InvalidOperationException("The log store is not open yet.");

    /// <summary>Retention of the embedded log (the retention service's round).</summary>
    public Task ApplyRetentionAsync(CancellationToken cancellationToken) =>
        (_store ?? throw new InvalidOperationException("The log store is not open yet.")).ApplyRetentionAsync(cancellationToken);

    public IGroupCoordinator Groups => _groups ?? throw new InvalidOperationException("The group coordinator is not open yet.");

    public bool IsOpen => _store is not null && _groups is not null;

    private readonly Lock _openLock = new(); // the directory's lock, handed from Prepare to the store
    private OpenOnce? _open;

    private OpenOnce Open => _open ??= new OpenOnce(OpenAsync);

    /// <summary>The data directory, as a full path.</summary>
    public string DataDirectory => Path.GetFullPath(logOptions.Value.DataDirectory, environment.ContentRootPath);

    /// <summary>
    /// Takes the data directory's lock, before the server listens or opens anything in it (one directory, one server):
    /// null when taken, else why this server must not start — another holds it, named with its process id where its
    /// lock file says.
    /// </summary>
    public string? Prepare()
    {
        try
        {
            lock (_openLock)
            {
                _directoryLock ??= DataDirectoryLock.Acquire(DataDirectory);
            }
            return null;
        }
        catch (DataDirectoryLockedException ex)
        {
            return ex.Message;
        }
        catch (OptionsValidationException invalid)
        {
            // The storage settings are read here first: one out of its range is told as the other refusals are.
            return $"Refusing to start: {string.Join(" ", invalid.Failures)}";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"Cannot lock the data directory {DataDirectory}: {ex.Message}";
        }
    }

    /// <summary>Starts opening the storage on the thread pool (once; later calls do nothing).</summary>
    public void BeginOpen() => _ = Open.Opening();

    /// <summary>Waits for the storage to open (started here unless <see cref="BeginOpen"/> started it), with its failure.</summary>
    public Task StartAsync(CancellationToken cancellationToken) => Open.Opening().WaitAsync(cancellationToken);

    /// <summary>
    /// Waits for the storage to open, for a request that arrived while it was still opening; a storage that could not
    /// be opened is a <see cref="StorageFailureException"/> (503), and the host is then stopping.
    /// </summary>
    public Task WhenOpenAsync(CancellationToken cancellationToken) => Open.WhenOpenAsync("The storage could not be opened", cancellationToken);

    private async Task OpenAsync()
    {
        var configured = logOptions.Value;
        configured.DataDirectory = DataDirectory;
        DataDirectoryLock? directoryLock;
        lock (_openLock)
        {
            // The store holds the lock from here on and releases it when it is closed.
            directoryLock = _directoryLock;
            _directoryLock = null;
        }
        _store = await LogStore.OpenAsync(configured, time, loggers.CreateLogger("Gateway.Log"), startVerification: false, directoryLock);
        var store = _store;
        // Logs below recovery checkpoints are verified once the server serves, not while it starts.
        lifetime.ApplicationStarted.Register(store.StartVerification);
        store.CommitObserver = metrics.CommitCompleted;
        try
        {
            string groupsDirectory = Path.Combine(configured.DataDirectory, "groups");
            DirectorySync.CreateDirectory(groupsDirectory);
            _groups = new GroupCoordinator(
                Path.Combine(groupsDirectory, "groups.db"),
                groupOptions.Value,
                topic => store.TryGetTopic(topic, out var t) ? t.PartitionCount : 0,
                time,
                loggers.CreateLogger("Gateway.Groups"),
                store.TopicExists);
            // The database file (and LiteDB's own files beside it) made durable by name.
            DirectorySync.Sync(groupsDirectory);
        }
        catch (Exception ex)
        {
            // A groups database that cannot be opened: the log is closed again (and the directory's lock released),
            // and the start is refused with the reason rather than a crash.
            _store = null;
            await store.DisposeAsync();
            throw new StorageFailureException(
                $"The consumer groups' database {Path.Combine(configured.DataDirectory, "groups", "groups.db")} cannot be opened: {ex.Message} " +
                "The log is intact; to start without the groups and their committed offsets, move the groups directory aside.", ex);
        }
    }

    public void Dispose()
    {
        _groups?.Dispose();
        _directoryLock?.Dispose();
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Open.Started is { } opening)
        {
            // A start given up while the storage was still opening: close what it opens (its failure was reported).
            await opening.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        _groups?.Dispose();
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }
}
