using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Gateway.Server.Tests.Kafka;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// The Kafka backend (<c>Storage:Backend=kafka</c>) in a real process, in front of a Kafka cluster that is another
/// Gateway process's Kafka listener (no Kafka broker installs here): topics made and changed over HTTP are the
/// cluster's, records keep their formats and headers, a topic another Kafka client made is served, long-polls wake on
/// records, and what the backend does not offer yet is 501 <c>not_supported</c> naming the capability.
/// </summary>
public sealed class KafkaBackendTests : IAsyncLifetime
{
    private readonly TempDirectory _nodeData = new("gateway-kafka-backend-tests", create: false);
    private KafkaServer _cluster = null!;
    private ServerProcess _node = null!;

    private HttpClient Node => _node.Client;

    public async Task InitializeAsync()
    {
        _cluster = await KafkaServer.StartAsync();
        _node = await ServerProcess.StartAsync(_nodeData.Path,
            "--Storage:Backend=kafka", $"--Kafka:BootstrapServers={_cluster.Bootstrap}", "--Kafka:MetadataRefreshMs=300", "--Kafka:RequestTimeoutMs=10000");
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        await _cluster.DisposeAsync();
        _nodeData.Dispose();
    }

    [Fact]
    public async Task Topics_made_and_changed_over_HTTP_are_the_clusters()
    {
        await Http.CreateTopicAsync(Node, "orders", 3, """{"retentionMs":3600000}""");
        var topic = await Http.GetJsonAsync(Node, "/v1/topics/orders");
        Assert.Equal(3, topic["partitions"]!.AsArray().Count);
        Assert.Equal(3_600_000, (long)topic["config"]!["retentionMs"]!);
        // The cluster has it, with the retention as Kafka's topic config.
        var seen = await Http.GetJsonAsync(_cluster.Http, "/v1/topics/orders");
        Assert.Equal(3, seen["partitions"]!.AsArray().Count);
        Assert.Equal(3_600_000, (long)seen["config"]!["retentionMs"]!);

        using (var again = await Node.PostAsync("/v1/topics", Http.Json("""{"name":"orders","partitions":1}""")))
        {
            await Http.AssertProblemAsync(again, HttpStatusCode.Conflict, "topic_exists");
        }
        using (var grown = await Http.PatchAsync(Node, "/v1/topics/orders", """{"partitions":5}"""))
        {
            Assert.Equal(HttpStatusCode.OK, grown.StatusCode);
        }
        Assert.Equal(5, (await Http.GetJsonAsync(_cluster.Http, "/v1/topics/orders"))["partitions"]!.AsArray().Count);

        using (var deleted = await Node.DeleteAsync("/v1/topics/orders"))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        await Http.GetProblemAsync(Node, "/v1/topics/orders", HttpStatusCode.NotFound, "topic_not_found");
        await Http.GetProblemAsync(_cluster.Http, "/v1/topics/orders", HttpStatusCode.NotFound, "topic_not_found");
    }

    [Fact]
    public async Task Records_keep_formats_keys_headers_and_timestamps_and_reads_by_offset_and_time_work()
    {
        await Http.CreateTopicAsync(Node, "events", 2);
        var produced = await Http.ProduceAsync(Node, "events", """
            [{"partition":1,"key":"k1","value":{"n":1},"headers":{"trace":"t-1"},"timestamp":1000},
             {"partition":1,"key":"k2","value":"two","timestamp":2000},
             {"partition":1,"value":{"n":3},"timestamp":3000}]
            """, "?acks=disk");
        Assert.Equal([0L, 1L, 2L], produced["offsets"]!.AsArray().Select(o => (long)o!["offset"]!));
        await Http.ProduceAsync(Node, "events", """[{"partition":1,"value":"fast"}]""", "?acks=memory");
        // An acks=memory (acks=1) record is read once the cluster's high watermark passes it, as on the embedded
        // backend after its background flush: waited for, not assumed.
        Assert.Single(Http.Records(await Http.GetJsonAsync(Node, "/v1/topics/events/partitions/1/records?offset=3&waitMs=10000")));

        var records = Http.Records(await Http.GetJsonAsync(Node, "/v1/topics/events/partitions/1/records?offset=0"));
        Assert.Equal(4, records.Count);
        Assert.Equal("""{"n":1}""", Http.Raw(records[0]!["value"]));
        Assert.Equal("k1", (string)records[0]!["key"]!);
        Assert.Equal("t-1", (string)records[0]!["headers"]!["trace"]!);
        Assert.Null(records[0]!["headers"]!["gateway-format"]); // the format header is the backend's, not shown
        Assert.Equal(1000, (long)records[0]!["timestamp"]!);
        Assert.Equal("two", (string)records[1]!["value"]!);
        Assert.Equal("fast", (string)records[3]!["value"]!);

        var limited = Http.Records(await Http.GetJsonAsync(Node, "/v1/topics/events/partitions/1/records?offset=1&limit=2"));
        Assert.Equal([1L, 2L], limited.Select(r => (long)r!["offset"]!));
        var byTime = await Http.GetJsonAsync(Node, "/v1/topics/events/partitions/1/offsets?timestamp=1500");
        Assert.Equal(1, (long)byTime["offset"]!);
        await Http.GetProblemAsync(Node, "/v1/topics/events/partitions/1/records?offset=99", (HttpStatusCode)416, "offset_out_of_range");

        using (var deleted = await Node.DeleteAsync("/v1/topics/events/partitions/1/records?before=2"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        await Http.GetProblemAsync(Node, "/v1/topics/events/partitions/1/records?offset=0", (HttpStatusCode)416, "offset_out_of_range");
        Assert.Equal(2, (long)Http.Records(await Http.GetJsonAsync(Node, "/v1/topics/events/partitions/1/records?offset=2"))[0]!["offset"]!);
    }

    [Fact]
    public async Task A_topic_another_Kafka_client_made_is_served_and_a_long_poll_wakes_on_its_records()
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _cluster.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "external", NumPartitions = 1, ReplicationFactor = 1 }]);
        }
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _cluster.Bootstrap, Acks = Acks.All }).Build())
        {
            await producer.ProduceAsync(new TopicPartition("external", 0), new Message<string, string> { Key = "a", Value = "hello" });
        }
        JsonArray records = [];
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            using var response = await Node.GetAsync("/v1/topics/external/partitions/0/records?offset=0");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                records = Http.Records(JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
                break;
            }
            await Task.Delay(200);
        }
        var record = Assert.Single(records);
        Assert.Equal("hello", Encoding.UTF8.GetString(Convert.FromBase64String((string)record!["valueBase64"]!)));

        var poll = Node.GetAsync("/v1/topics/external/partitions/0/records?offset=1&waitMs=15000");
        await Task.Delay(500);
        Assert.False(poll.IsCompleted);
        var clock = Stopwatch.StartNew();
        await Http.ProduceAsync(Node, "external", """[{"partition":0,"value":"woken"}]""");
        using var answer = await poll;
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the long-poll took {clock.Elapsed} after the record");
        var woken = Http.Records(JsonNode.Parse(await answer.Content.ReadAsStringAsync())!);
        Assert.Equal("woken", (string)Assert.Single(woken)!["value"]!);
    }

    [Fact]
    public async Task Many_SSE_streams_and_long_polls_of_a_partition_share_the_nodes_one_tail_reader()
    {
        await Http.CreateTopicAsync(Node, "fan", 1);
        await Http.ProduceAsync(Node, "fan", """[{"value":"before"}]""");
        int clusterPort = int.Parse(_cluster.Bootstrap.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
        int before = ConnectionsTo(_node.Id, clusterPort);
        Assert.True(before > 0, "the node's clients are connected to the cluster (the count sees them)");

        const int Streams = 60;
        var streams = new List<SseClient>();
        try
        {
            for (int i = 0; i < Streams; i++)
            {
                streams.Add(await SseClient.OpenAsync(Node, "/v1/topics/fan/events?from=latest"));
            }
            var polls = Enumerable.Range(0, 20).Select(_ => Node.GetAsync("/v1/topics/fan/partitions/0/records?offset=1&waitMs=15000")).ToList();
            await Task.Delay(500);
            // Another Kafka client writes: the node learns of the records only through its tail reader.
            using (var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = _cluster.Bootstrap, Acks = Acks.All }).Build())
            {
                foreach (string value in new[] { "x", "y", "z" })
                {
                    await producer.ProduceAsync(new TopicPartition("fan", 0), new Message<string?, string> { Value = value });
                }
            }
            foreach (var stream in streams)
            {
                var seen = new List<string>();
                for (int i = 0; i < 3; i++)
                {
                    seen.Add(Encoding.UTF8.GetString(Convert.FromBase64String((string)JsonNode.Parse((await stream.NextAsync()).Data)!["valueBase64"]!)));
                }
                Assert.Equal(["x", "y", "z"], seen);
            }
            foreach (var poll in polls)
            {
                using var answer = await poll;
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                Assert.NotEmpty(Http.Records(JsonNode.Parse(await answer.Content.ReadAsStringAsync())!));
            }
            // Eighty readers of the partition, and the node's connections to the cluster barely move: no consumer per
            // stream or per request (each would open its own). (A metadata round may wake the readers before the tail
            // has the records; their reads then go through the node's pool of at most 8 readers.)
            int after = ConnectionsTo(_node.Id, clusterPort);
            Assert.True(after - before <= 20, $"the node's connections to the cluster went from {before} to {after} for {Streams} streams and 20 long-polls");
        }
        finally
        {
            foreach (var stream in streams)
            {
                await stream.DisposeAsync();
            }
        }
    }

    /// <summary>The process's established TCP connections to <paramref name="port"/> (its sockets, matched in /proc/net/tcp*).</summary>
    private static int ConnectionsTo(int pid, int port)
    {
        var sockets = new HashSet<string>(StringComparer.Ordinal);
        foreach (string fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                {
                    sockets.Add(target["socket:[".Length..^1]);
                }
            }
            catch (IOException)
            {
                // Closed while listed.
            }
        }
        string remote = $":{port:X4}";
        int count = 0;
        foreach (string table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (string line in File.ReadLines(table).Skip(1))
            {
                string[] columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (columns.Length > 9 && columns[2].EndsWith(remote, StringComparison.Ordinal) && columns[3] == "01" && sockets.Contains(columns[9]))
                {
                    count++;
                }
            }
        }
        return count;
    }

    [Fact]
    public async Task Nodes_keep_nothing_an_SSE_client_of_a_killed_node_resumes_exactly_on_another()
    {
        using var otherData = new TempDirectory("gateway-kafka-backend-tests", create: false);
        await using var other = await ServerProcess.StartAsync(otherData.Path,
            "--Storage:Backend=kafka", $"--Kafka:BootstrapServers={_cluster.Bootstrap}", "--Kafka:MetadataRefreshMs=300", "--Kafka:RequestTimeoutMs=10000");

        // A topic made through one node is served by the other after its next look at the cluster.
        await Http.CreateTopicAsync(Node, "shared", 2);
        var deadline = Stopwatch.StartNew();
        while ((await other.Client.GetAsync("/v1/topics/shared")).StatusCode != HttpStatusCode.OK && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(100);
        }

        // An SSE client of the second node sees what the first node produced, as it is produced.
        string? lastId = null;
        await using (var stream = await SseClient.OpenAsync(other.Client, "/v1/topics/shared/events"))
        {
            await Http.ProduceAsync(Node, "shared", """[{"partition":0,"value":"a"},{"partition":1,"value":"b"},{"partition":0,"value":"c"}]""");
            var seen = new List<string>();
            for (int i = 0; i < 3; i++)
            {
                var item = await stream.NextAsync();
                seen.Add((string)JsonNode.Parse(item.Data)!["value"]!);
                lastId = item.EventId;
            }
            Assert.Equal(["a", "b", "c"], seen.Order());
        }

        // The second node dies; the client resumes on the first with its Last-Event-ID: what came after, nothing twice.
        other.Kill();
        await Http.ProduceAsync(Node, "shared", """[{"partition":1,"value":"d"},{"partition":0,"value":"e"}]""");
        await using (var resumed = await SseClient.OpenAsync(Node, "/v1/topics/shared/events", lastId))
        {
            var after = new List<string>();
            for (int i = 0; i < 2; i++)
            {
                after.Add((string)JsonNode.Parse((await resumed.NextAsync()).Data)!["value"]!);
            }
            Assert.Equal(["d", "e"], after.Order());
            await Http.ProduceAsync(Node, "shared", """[{"partition":0,"value":"f"}]""");
            Assert.Equal("f", (string)JsonNode.Parse((await resumed.NextAsync()).Data)!["value"]!);
        }
    }

    [Fact]
    public async Task What_the_backend_does_not_offer_yet_is_501_naming_the_capability()
    {
        await Http.CreateTopicAsync(Node, "plain", 1);
        using var conditional = await Node.PostAsync("/v1/topics/plain/partitions/0/records?expectedOffset=0", Http.Json("""{"records":[{"value":"x"}]}"""));
        var problem = await Http.AssertProblemAsync(conditional, HttpStatusCode.NotImplemented, "not_supported");
        Assert.Equal("conditionalAppend", (string)problem["capability"]!);
        Assert.Empty(Http.Records(await Http.GetJsonAsync(Node, "/v1/topics/plain/partitions/0/records?offset=0")));

        var health = await Node.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}
