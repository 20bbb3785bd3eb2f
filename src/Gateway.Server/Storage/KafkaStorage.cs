using Gateway.Storage;
using Gateway.Storage.Kafka;
using Gateway.Storage.Kafka.Groups;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Storage;

/// <summary>
/// The Kafka backend's host (<c>Storage:Backend=kafka</c>): connects to the cluster named by
/// <c>Kafka:BootstrapServers</c> from <see cref="BeginOpen"/>, right after the host is built; the host's start waits
/// for it and a cluster that does not answer within <c>Kafka:RequestTimeoutMs</c> refuses the start. Nothing is kept
/// on this node: a node may be stopped, killed or added at any time. HTTP consumer groups are the groups log's
/// (<see cref="KafkaGroups"/>), read back by every node.
/// </summary>
internal sealed class KafkaStorage(IOptions<KafkaBackendOptions> kafkaOptions, IOptions<GroupOptions> groupOptions, IConfiguration configuration, TimeProvider time, ILoggerFactory loggers) : IStorageHost, IHostedService, IDisposable
{
    private KafkaLogStorage? _store;
    private KafkaGroups? _groups;
    private OpenOnce? _open;

    private OpenOnce Open => _open ??= new OpenOnce(OpenAsync);

    public bool IsOpen => _store is not null;

    public ILogStorage Store => _store ?? throw new InvalidOperationException("The Kafka backend is not open yet.");

    public IGroupCoordinator Groups => _groups ?? throw new InvalidOperationException("The Kafka backend is not open yet.");

    public string? Prepare() => kafkaOptions.Value.ValidationError() is { } invalid ? $"Refusing to start: {invalid}" : null;

    public void BeginOpen() => _ = Open.Opening();

    public Task StartAsync(CancellationToken cancellationToken) => Open.Opening().WaitAsync(cancellationToken);

    public Task WhenOpenAsync(CancellationToken cancellationToken) => Open.WhenOpenAsync("The Kafka cluster could not be reached", cancellationToken);

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Open.Started is { } opening)
        {
            await opening.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        _groups?.Dispose();
        _groups = null;
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    public void Dispose() => _groups?.Dispose();

    private async Task OpenAsync()
    {
        // Topic defaults are Storage:TopicDefaults, as for the embedded backend. A record is one Kafka message: at most
        // what the cluster takes by default (message.max.bytes, ~1 MB).
        var defaults = configuration.GetSection("Storage:TopicDefaults").Get<TopicConfig>() ?? new TopicConfig();
        var limits = new StorageLimits(MaxBatchBytes: 64 << 20, MaxRecordBytesLimit: 1 << 20, defaults);
        var store = await KafkaLogStorage.OpenAsync(kafkaOptions.Value, limits, time, loggers.CreateLogger("Gateway.Storage.Kafka"));
        try
        {
            _groups = await KafkaGroups.OpenAsync(store, groupOptions.Value, time, loggers.CreateLogger("Gateway.Storage.Kafka.Groups"));
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
        _store = store;
    }
}
