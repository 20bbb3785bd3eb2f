using Gateway.Storage;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Server.Tests;

/// <summary>
/// The real server in-process, on its own temporary data folder, removed afterwards, over the storage backend named by
/// <see cref="Backend"/> (the environment's <c>GATEWAY_TEST_BACKEND</c>, default <c>embedded</c>): the HTTP suite runs
/// unchanged against any backend, and a test that needs a capability the backend lacks skips, saying so
/// (<see cref="Require"/>). With <c>kafka</c>, each factory gets a cluster of its own (another Gateway process's Kafka
/// listener, as no Kafka broker installs here), so tests never see each other's topics.
/// </summary>
public sealed class GatewayFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly TimeProvider? _time;
    private readonly bool _ownsData;
    private readonly StorageCapabilities? _declared;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Kafka.KafkaServer>> s_clusters = new(StringComparer.Ordinal);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> s_cleared = new(StringComparer.Ordinal);
    private Kafka.KafkaServer? _cluster;

    /// <summary>
    /// A real Kafka cluster (<c>KAFKA_BOOTSTRAP=host:port</c>) for the suite over the kafka backend, instead of a
    /// Gateway listener per test. The cluster must be one for tests alone: each test server starts by deleting its
    /// topics (all but Kafka's internal ones) and keeps its HTTP groups in a groups log of its own; tests then run one
    /// at a time (<c>-- xUnit.ParallelizeTestCollections=false</c>, README).
    /// </summary>
    public static string? RealCluster => Environment.GetEnvironmentVariable("KAFKA_BOOTSTRAP") is { Length: > 0 } bootstrap ? bootstrap : null;

    /// <summary>The backend the suite runs against (<c>Storage:Backend</c>).</summary>
    public static string Backend => Environment.GetEnvironmentVariable("GATEWAY_TEST_BACKEND") is { Length: > 0 } backend ? backend : "embedded";

    /// <param name="settings">configuration to set</param>
    /// <param name="time">the clock, when the test controls it</param>
    /// <param name="dataDirectory">an existing data folder to reopen (kept afterwards), else a new one (removed)</param>
    /// <param name="declared">capabilities the backend declares instead of its own (the HTTP layer's answer to a backend without them)</param>
    public GatewayFactory(Dictionary<string, string?>? settings = null, TimeProvider? time = null, string? dataDirectory = null, StorageCapabilities? declared = null)
    {
        _declared = declared;
        _ownsData = dataDirectory is null;
        DataDirectory = dataDirectory ?? Path.Combine(Path.GetTempPath(), "gateway-server-tests", Guid.NewGuid().ToString("N"));
        _settings = settings ?? [];
        _time = time;
    }

    public string DataDirectory { get; }

    /// <summary>Skips the test, with the reason, when the backend does not offer <paramref name="capability"/>.</summary>
    public void Require(StorageCapabilities capability) =>
        Skip.IfNot(Services.GetRequiredService<ILogStorage>().Capabilities.HasFlag(capability), $"the {Backend} backend does not offer {capability}");

    /// <summary>
    /// Skips the test, with the reason, unless the suite runs on the embedded backend: for what only it has (a data
    /// directory, its files, its lock, its recovery).
    /// </summary>
    public static void RequireEmbedded(string what) =>
        Skip.IfNot(Backend == "embedded", $"the {Backend} backend has no {what}: the test is about the embedded backend's");

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Storage:Backend", Backend);
        builder.UseSetting("Storage:DataDirectory", DataDirectory);
        builder.UseSetting("Storage:PageSizeBits", "20");
        builder.UseSetting("Storage:MemorySizeBits", "21");
        builder.UseSetting("Storage:TopicDefaults:MaxRecordBytes", "262144");
        if (Backend == "kafka")
        {
            if (RealCluster is { } real)
            {
                if (s_cleared.TryAdd(DataDirectory, true))
                {
                    ClearTopics(real); // a server reopened on its folder (a restart) finds its topics as it left them
                }
                builder.UseSetting("Kafka:BootstrapServers", real);
                builder.UseSetting("Kafka:GroupsTopic", "__gateway_groups_" + Path.GetFileName(DataDirectory));
            }
            else
            {
                // One cluster per data folder: a server reopened on the same folder (a restart) finds its cluster again.
                _cluster ??= s_clusters.GetOrAdd(DataDirectory, _ => new Lazy<Kafka.KafkaServer>(StartCluster)).Value;
                builder.UseSetting("Kafka:BootstrapServers", _cluster.Bootstrap);
            }
            builder.UseSetting("Kafka:MetadataRefreshMs", "300");
            builder.UseSetting("Kafka:RequestTimeoutMs", "10000");
            builder.UseSetting("Kafka:TailFetchWaitMs", "10");
        }
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
        if (_time is not null)
        {
            builder.ConfigureTestServices(services => services.AddSingleton(_time));
        }
        if (_declared is { } declared)
        {
            builder.ConfigureTestServices(services =>
            {
                var registered = services.Single(d => d.ServiceType == typeof(ILogStorage));
                services.Remove(registered);
                services.AddSingleton<ILogStorage>(sp => new DeclaredCapabilities((ILogStorage)registered.ImplementationFactory!(sp), declared));
            });
        }
    }

    /// <summary>Deletes every topic of the real cluster but Kafka's internal ones (earlier tests' groups logs too), and waits until they are gone.</summary>
    private static void ClearTopics(string bootstrap)
    {
        using var admin = new Confluent.Kafka.AdminClientBuilder(new Confluent.Kafka.AdminClientConfig { BootstrapServers = bootstrap }).Build();
        List<string> Left() => [.. admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Select(t => t.Topic)
            .Where(t => !t.StartsWith("__", StringComparison.Ordinal) || t.StartsWith("__gateway_groups", StringComparison.Ordinal))];
        var deadline = DateTime.UtcNow.AddSeconds(60);
        for (var left = Left(); left.Count > 0; left = Left())
        {
            Assert.True(DateTime.UtcNow < deadline, $"the test cluster at {bootstrap} still has topics {string.Join(", ", left)}");
            try
            {
                admin.DeleteTopicsAsync(left).GetAwaiter().GetResult();
            }
            catch (Confluent.Kafka.Admin.DeleteTopicsException)
            {
                // Some went meanwhile, or are still being deleted: looked at again.
            }
            Thread.Sleep(200);
        }
    }

    private static Kafka.KafkaServer StartCluster()
    {
        var cluster = Kafka.KafkaServer.StartAsync().GetAwaiter().GetResult();
        // Clusters of folders the tests own outlive each server on them; they go when the test run ends.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return cluster;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_cluster is not null && _ownsData && s_clusters.TryRemove(DataDirectory, out _))
        {
            await _cluster.DisposeAsync();
        }
        if (_ownsData && Directory.Exists(DataDirectory))
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
    }
}

/// <summary>The backend as it is, declaring other capabilities: how the HTTP layer answers a backend without them.</summary>
internal sealed class DeclaredCapabilities(ILogStorage inner, StorageCapabilities capabilities) : ILogStorage
{
    public StorageCapabilities Capabilities => capabilities;

    public StorageLimits Limits => inner.Limits;

    public IReadOnlyCollection<ITopic> Topics => inner.Topics;

    public IReadOnlyList<(string Topic, int Partition, string Reason)> Failures => inner.Failures;

    public ITopic GetTopic(string name) => inner.GetTopic(name);

    public bool TryGetTopic(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ITopic? topic) => inner.TryGetTopic(name, out topic);

    public bool TopicExists(string name) => inner.TopicExists(name);

    public ValueTask<long> NewProducerIdAsync(CancellationToken cancellationToken = default) => inner.NewProducerIdAsync(cancellationToken);

    public Task<ITopic> CreateTopicAsync(string name, int partitions, TopicConfig? config = null, CancellationToken cancellationToken = default) =>
        inner.CreateTopicAsync(name, partitions, config, cancellationToken);

    public Task<ITopic> UpdateTopicAsync(string name, TopicConfig? config, int? partitions, CancellationToken cancellationToken = default) =>
        inner.UpdateTopicAsync(name, config, partitions, cancellationToken);

    public Task DeleteTopicAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteTopicAsync(name, cancellationToken);
}
