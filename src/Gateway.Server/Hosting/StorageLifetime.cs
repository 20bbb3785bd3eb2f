using Gateway.Log;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Hosting;

/// <summary>
/// Opens the log store when the host starts (before requests are served) and, on shutdown, commits everything
/// appended and closes it after the server has stopped taking requests.
/// </summary>
internal sealed class StorageLifetime(IOptions<LogStoreOptions> options, IHostEnvironment environment, ILoggerFactory loggers) : IHostedService
{
    private LogStore? _store;

    public LogStore Store => _store ?? throw new InvalidOperationException("The log store is not open yet.");

    public bool IsOpen => _store is not null;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var configured = options.Value;
        configured.DataDirectory = Path.GetFullPath(configured.DataDirectory, environment.ContentRootPath);
        _store = await LogStore.OpenAsync(configured, TimeProvider.System, loggers.CreateLogger("Gateway.Log"), cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }
}
