namespace Gateway.Server.Tests;

/// <summary>
/// Puts a test's server processes on the suite's backend (<see cref="GatewayFactory.Backend"/>): on <c>kafka</c>, each
/// data folder gets a cluster of its own (another Gateway process's Kafka listener), kept while the test lasts, so a
/// server restarted on its folder finds its topics again. On <c>embedded</c> the settings are left as they are.
/// </summary>
internal sealed class SuiteBackend : IAsyncDisposable
{
    private readonly Dictionary<string, Kafka.KafkaServer> _clusters = new(StringComparer.Ordinal);

    /// <summary><paramref name="settings"/>, and on the kafka backend those that point the server at the folder's cluster.</summary>
    public async Task<string[]> SettingsAsync(string dataDirectory, params string[] settings)
    {
        if (GatewayFactory.Backend != "kafka")
        {
            return settings;
        }
        if (!_clusters.TryGetValue(dataDirectory, out var cluster))
        {
            _clusters[dataDirectory] = cluster = await Kafka.KafkaServer.StartAsync();
        }
        return [.. settings, "--Storage:Backend=kafka", $"--Kafka:BootstrapServers={cluster.Bootstrap}", "--Kafka:MetadataRefreshMs=300",
            "--Kafka:RequestTimeoutMs=10000", "--Kafka:TailFetchWaitMs=10"];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var cluster in _clusters.Values)
        {
            await cluster.DisposeAsync();
        }
    }
}
