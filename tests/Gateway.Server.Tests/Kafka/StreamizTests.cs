using System.Text;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;
using Streamiz.Kafka.Net;
using Streamiz.Kafka.Net.SerDes;
using Streamiz.Kafka.Net.Table;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// Kafka Streams-style processing on Gateway: Streamiz.Kafka.Net 1.8.2 topologies (a consumer group, a producer,
/// commits, and for the stateful count a changelog topic it creates itself with cleanup.policy=compact) read what
/// HTTP produced and write what HTTP reads back.
/// </summary>
public sealed class StreamizTests : IAsyncLifetime
{
    private readonly TempDirectory _state = new("gateway-streamiz-state");
    private KafkaServer _server = null!;

    public async Task InitializeAsync() => _server = await KafkaServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _state.Dispose();
    }

    private StreamConfig<StringSerDes, StringSerDes> Config(string application) => new()
    {
        ApplicationId = application,
        BootstrapServers = _server.Bootstrap,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        NumStreamThreads = 1,
        CommitIntervalMs = 200,
        PollMs = 50,
        StateDir = Path.Combine(_state.Path, application),
        MessageTimeoutMs = 10_000,
        SessionTimeoutMs = 6_000,
        MaxPollIntervalMs = 10_000,
        Logger = NullLoggerFactory.Instance,
    };

    /// <summary>Runs the topology until <paramref name="done"/> holds (or fails after 60 s); the stream is always disposed.</summary>
    private static async Task RunAsync(StreamBuilder builder, StreamConfig<StringSerDes, StringSerDes> config, Func<Task<bool>> done)
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stream = new KafkaStream(builder.Build(), config);
        stream.StateChanged += (_, now) =>
        {
            if (now == KafkaStream.State.RUNNING)
            {
                running.TrySetResult();
            }
            else if (now == KafkaStream.State.ERROR)
            {
                running.TrySetException(new InvalidOperationException("The Streamiz topology went to ERROR."));
            }
        };
        try
        {
            await stream.StartAsync();
            await running.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!await done())
            {
                Assert.True(DateTime.UtcNow < deadline, "the topology did not finish its work within 60 s");
                await Task.Delay(200);
            }
        }
        finally
        {
            stream.Dispose(); // its threads are foreground threads
        }
    }

    private async Task<List<(string? Key, byte[] Value)>> ReadAllAsync(string topic)
    {
        var records = Http.Records(await Http.GetJsonAsync(_server.Http, $"/v1/topics/{topic}/partitions/0/records?offset=0&limit=1000"));
        return [.. records.Select(r => (
            r!["keyBase64"] is { } key ? Encoding.UTF8.GetString(Convert.FromBase64String((string)key!)) : (string?)r["key"],
            r["valueBase64"] is { } value ? Convert.FromBase64String((string)value!) : Encoding.UTF8.GetBytes((string)r["value"]!)))];
    }

    [Fact]
    public async Task A_stateless_filter_and_map_reads_what_HTTP_produced_and_writes_what_HTTP_reads()
    {
        await Http.CreateTopicAsync(_server.Http, "words", 1);
        await Http.CreateTopicAsync(_server.Http, "a-words", 1);
        await Http.ProduceAsync(_server.Http, "words", """[{"key":"1","value":"apple"},{"key":"2","value":"banana"},{"key":"3","value":"avocado"},{"key":"4","value":"cherry"},{"key":"5","value":"apricot"}]""");

        var builder = new StreamBuilder();
        builder.Stream<string, string>("words")
            .Filter((_, value, _) => value.StartsWith('a'))
            .MapValues((value, _) => value.ToUpperInvariant())
            .To("a-words");

        await RunAsync(builder, Config("streamiz-stateless"), async () => (await ReadAllAsync("a-words")).Count >= 3);

        var output = await ReadAllAsync("a-words");
        Assert.Equal([("1", "APPLE"), ("3", "AVOCADO"), ("5", "APRICOT")], output.Select(r => (r.Key, Encoding.UTF8.GetString(r.Value))));
        var group = await Http.GetJsonAsync(_server.Http, "/v1/groups/streamiz-stateless");
        Assert.Equal(5, (long)group["offsets"]![0]!["committedOffset"]!); // the topology committed its input
    }

    [Fact]
    public async Task A_stateful_count_creates_its_changelog_topic_and_counts_by_key()
    {
        await Http.CreateTopicAsync(_server.Http, "clicks", 1);
        await Http.CreateTopicAsync(_server.Http, "click-counts", 1);
        await Http.ProduceAsync(_server.Http, "clicks", """[{"key":"home","value":"x"},{"key":"cart","value":"x"},{"key":"home","value":"x"},{"key":"home","value":"x"},{"key":"cart","value":"x"}]""");

        var builder = new StreamBuilder();
        builder.Stream<string, string>("clicks")
            .GroupByKey()
            .Count(InMemory.As<string, long>("counts"))
            .ToStream()
            .To<StringSerDes, Int64SerDes>("click-counts");

        static Dictionary<string, long> Latest(List<(string? Key, byte[] Value)> records) =>
            records.GroupBy(r => r.Key!).ToDictionary(g => g.Key, g => BitConverter.ToInt64(g.Last().Value)); // Int64SerDes: little-endian
        await RunAsync(builder, Config("streamiz-counts"), async () =>
            Latest(await ReadAllAsync("click-counts")) is var counts && counts.GetValueOrDefault("home") == 3 && counts.GetValueOrDefault("cart") == 2);

        var changelog = await Http.GetJsonAsync(_server.Http, "/v1/topics/streamiz-counts-counts-changelog");
        Assert.Equal(-1, (long)changelog["config"]!["retentionMs"]!); // created by Streamiz as a compacted topic: everything kept
        Assert.Equal(3, Latest(await ReadAllAsync("streamiz-counts-counts-changelog"))["home"]);
    }
}
