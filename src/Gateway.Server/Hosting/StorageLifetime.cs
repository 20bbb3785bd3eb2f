using Gateway.Groups;
using Gateway.Log;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Hosting;

/// <summary>
/// Opens the log store and then the group coordinator when the host starts (before requests are served), and lets
/// the store verify logs below recovery checkpoints once the server has started; on
/// shutdown, after the server has stopped taking requests, closes the coordinator and commits and closes the log.
/// </summary>
internal sealed class StorageLifetime(
    IOptions<LogStoreOptions> logOptions,
    IOptions<GroupOptions> groupOptions,
    IHostEnvironment environment,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    GatewayMetrics metrics,
    ILoggerFactory loggers) : IHostedService, IDisposable
{
    private LogStore? _store;
    private GroupCoordinator? _groups;

    public LogStore Store => _store ?? throw new InvalidOperationException("The log store is not open yet.");

    public GroupCoordinator Groups => _groups ?? throw new InvalidOperationException("The group coordinator is not open yet.");

    public bool IsOpen => _store is not null && _groups is not null;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var configured = logOptions.Value;
        configured.DataDirectory = Path.GetFullPath(configured.DataDirectory, environment.ContentRootPath);
        _store = await LogStore.OpenAsync(configured, time, loggers.CreateLogger("Gateway.Log"), startVerification: false, cancellationToken);
        var store = _store;
        // Logs below recovery checkpoints are verified once the server serves, not while it starts.
        lifetime.ApplicationStarted.Register(store.StartVerification);
        store.CommitObserver = metrics.CommitCompleted;
        _groups = new GroupCoordinator(
            Path.Combine(configured.DataDirectory, "groups", "groups.db"),
            groupOptions.Value,
            topic => store.TryGetTopic(topic, out var t) ? t.PartitionCount : 0,
            time,
            loggers.CreateLogger("Gateway.Groups"));
    }

    public void Dispose() => _groups?.Dispose();

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _groups?.Dispose();
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }
}
