using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// The Kafka backend in front of librdkafka's mock cluster (three brokers, replication factor three), hosted by a
/// client in this test process; the Gateway node is a real process connecting to it over TCP. The mock serves
/// produce, fetch and metadata as Kafka does (not topic administration or time lookups: the topic is made by a
/// producer's metadata request, as auto-creation does).
/// </summary>
public sealed class KafkaMockClusterTests : IAsyncLifetime
{
    private readonly TempDirectory _nodeData = new("gateway-kafka-mock-tests", create: false);
    private IProducer<byte[], byte[]> _owner = null!;
    private string _bootstrap = "";
    private ServerProcess _node = null!;

    public async Task InitializeAsync()
    {
        var config = new ProducerConfig { Acks = Acks.All, EnableIdempotence = true };
        config.Set("test.mock.num.brokers", "3");
        _owner = new ProducerBuilder<byte[], byte[]>(config).Build();
        using (var admin = new DependentAdminClientBuilder(_owner.Handle).Build())
        {
            var brokers = admin.GetMetadata(TimeSpan.FromSeconds(10)).Brokers;
            Assert.Equal(3, brokers.Count);
            _bootstrap = string.Join(",", brokers.Select(b => $"{b.Host}:{b.Port}"));
        }
        // Auto-created by the producer's metadata request: 4 partitions, each on three brokers.
        // (Partition 0: the tests write to the others and count their offsets from 0.)
        await _owner.ProduceAsync(new TopicPartition("mocked", 0), new Message<byte[], byte[]> { Value = Encoding.UTF8.GetBytes("from-kafka") });
        _node = await ServerProcess.StartAsync(_nodeData.Path,
            "--Storage:Backend=kafka", $"--Kafka:BootstrapServers={_bootstrap}", "--Kafka:MetadataRefreshMs=300", "--Kafka:RequestTimeoutMs=5000");
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        _owner.Dispose();
        _nodeData.Dispose();
    }

    [Fact]
    public async Task HTTP_produce_and_fetch_go_through_a_replicated_mock_cluster()
    {
        var node = _node.Client;
        var deadline = Stopwatch.StartNew();
        JsonNode? topic = null;
        while (topic is null && deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            using var response = await node.GetAsync("/v1/topics/mocked");
            topic = response.StatusCode == HttpStatusCode.OK ? JsonNode.Parse(await response.Content.ReadAsStringAsync()) : null;
            await Task.Delay(100);
        }
        Assert.NotNull(topic);
        Assert.Equal(4, topic["partitions"]!.AsArray().Count);

        var produced = await Http.ProduceAsync(node, "mocked", """[{"partition":2,"key":"k","value":{"n":1}},{"partition":2,"value":"two"}]""", "?acks=disk");
        Assert.Equal([0L, 1L], produced["offsets"]!.AsArray().Select(o => (long)o!["offset"]!));
        await Http.ProduceAsync(node, "mocked", """[{"partition":2,"value":"three"}]""", "?acks=memory");
        // acks=memory (acks=1): readable once the cluster's high watermark passes it; waited for, not assumed.
        Assert.Single(Http.Records(await Http.GetJsonAsync(node, "/v1/topics/mocked/partitions/2/records?offset=2&waitMs=10000")));
        var records = Http.Records(await Http.GetJsonAsync(node, "/v1/topics/mocked/partitions/2/records?offset=0"));
        Assert.Equal(["""{"n":1}""", "\"two\"", "\"three\""], records.Select(r => Http.Raw(r!["value"])));

        // A long-poll wakes when a Kafka client writes to the cluster.
        var poll = node.GetAsync("/v1/topics/mocked/partitions/2/records?offset=3&waitMs=10000");
        await Task.Delay(300);
        await _owner.ProduceAsync(new TopicPartition("mocked", 2), new Message<byte[], byte[]> { Value = Encoding.UTF8.GetBytes("woken") });
        using var answer = await poll;
        var woken = Http.Records(JsonNode.Parse(await answer.Content.ReadAsStringAsync())!);
        Assert.Equal("woken", Encoding.UTF8.GetString(Convert.FromBase64String((string)Assert.Single(woken)!["valueBase64"]!)));
    }

    [Fact]
    public async Task With_the_partitions_leader_down_acks_disk_produce_succeeds_or_fails_503_in_bounded_time_and_loses_nothing()
    {
        var node = _node.Client;
        var deadline = Stopwatch.StartNew();
        while ((await node.GetAsync("/v1/topics/mocked")).StatusCode != HttpStatusCode.OK && deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(100);
        }
        int leader;
        using (var admin = new DependentAdminClientBuilder(_owner.Handle).Build())
        {
            leader = admin.GetMetadata("mocked", TimeSpan.FromSeconds(10)).Topics[0].Partitions.Single(p => p.PartitionId == 1).Leader;
        }
        var acknowledged = new List<string>();
        async Task<HttpStatusCode> ProduceAsync(string value)
        {
            using var response = await node.PostAsync("/v1/topics/mocked/partitions/1/records?acks=disk", Http.Json($$"""{"records":[{"value":"{{value}}"}]}"""));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                acknowledged.Add(value);
            }
            else
            {
                await Http.AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable, "storage_unavailable");
            }
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await ProduceAsync("before"));
        var cluster = new MockCluster(_owner);
        cluster.SetDown(leader);
        var clock = Stopwatch.StartNew();
        await ProduceAsync("during");
        // Kafka:RequestTimeoutMs is 5 s: the answer, either way, comes within it and some slack.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"a produce with the leader down took {clock.Elapsed}");
        cluster.SetUp(leader);
        clock.Restart();
        HttpStatusCode after;
        do
        {
            after = await ProduceAsync("after");
        }
        while (after != HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, after);

        // Every acknowledged record is in the partition; the idempotent producer wrote none of them twice (a 503 may
        // still have landed: at least once, as any Kafka producer whose request timed out).
        // The node's readers may still be finding the partition's leader again (503 meanwhile).
        HttpResponseMessage read;
        clock.Restart();
        while ((read = await node.GetAsync("/v1/topics/mocked/partitions/1/records?offset=0")).StatusCode != HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Http.AssertProblemAsync(read, HttpStatusCode.ServiceUnavailable, "storage_unavailable");
            read.Dispose();
            await Task.Delay(200);
        }
        var stored = Http.Records(JsonNode.Parse(await read.Content.ReadAsStringAsync())!).Select(r => (string)r!["value"]!).ToList();
        read.Dispose();
        foreach (string value in acknowledged.Distinct())
        {
            Assert.Contains(value, stored);
        }
        Assert.Single(stored, "before");
    }

    [Fact]
    public async Task HTTP_groups_commit_through_the_mock_cluster_and_go_on_when_the_groups_logs_leader_goes_down()
    {
        var node = _node.Client;
        var deadline = Stopwatch.StartNew();
        while ((await node.GetAsync("/v1/topics/mocked")).StatusCode != HttpStatusCode.OK && deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(100);
        }
        for (int p = 0; p < 4; p++)
        {
            await Http.ProduceAsync(node, "mocked", $$"""[{"partition":{{p}},"value":"r{{p}}"}]""");
        }
        using (var join = await node.PostAsync("/v1/groups/g/members", Http.Json("""{"topics":["mocked"],"memberId":"a","autoOffsetReset":"earliest"}""")))
        {
            Assert.Equal(HttpStatusCode.Created, join.StatusCode);
        }
        var fetched = Http.Records(await Http.GetJsonAsync(node, "/v1/groups/g/members/a/records?limit=100"));
        Assert.True(fetched.Count >= 4, $"fetched {fetched.Count}");
        var group = await Http.GetJsonAsync(node, "/v1/groups/g");
        using (var commit = await node.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)group["generation"]!}}}""")))
        {
            Assert.Equal(HttpStatusCode.OK, commit.StatusCode);
        }
        var committed = Committed(await Http.GetJsonAsync(node, "/v1/groups/g"));
        Assert.Equal(4, committed.Count);

        // The groups log's leader goes down: a heartbeat succeeds or fails 503 within the request timeout, and once
        // the broker is back the member goes on with its commits intact.
        int leader;
        using (var admin = new DependentAdminClientBuilder(_owner.Handle).Build())
        {
            leader = admin.GetMetadata("__gateway_groups", TimeSpan.FromSeconds(10)).Topics[0].Partitions.Single(p => p.PartitionId == 0).Leader;
        }
        var cluster = new MockCluster(_owner);
        cluster.SetDown(leader);
        var clock = Stopwatch.StartNew();
        using (var during = await node.PostAsync("/v1/groups/g/members/a/heartbeat", null))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"a heartbeat with the groups log's leader down took {clock.Elapsed}");
            if (during.StatusCode != HttpStatusCode.OK)
            {
                await Http.AssertProblemAsync(during, HttpStatusCode.ServiceUnavailable, "storage_unavailable");
            }
        }
        cluster.SetUp(leader);
        clock.Restart();
        HttpStatusCode after;
        do
        {
            using var heartbeat = await node.PostAsync("/v1/groups/g/members/a/heartbeat", null);
            after = heartbeat.StatusCode;
        }
        while (after != HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, after);
        Assert.Equal(committed, Committed(await Http.GetJsonAsync(node, "/v1/groups/g")));
    }

    private static Dictionary<int, long> Committed(JsonNode group) =>
        group["offsets"]!.AsArray().Where(o => o!["committedOffset"] is not null).ToDictionary(o => (int)o!["partition"]!, o => (long)o!["committedOffset"]!);

    [Fact]
    public async Task Readiness_follows_the_clusters_reachability()
    {
        var node = _node.Client;
        Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("/health/ready")).StatusCode);
        var cluster = new MockCluster(_owner);
        for (int broker = 1; broker <= 3; broker++)
        {
            cluster.SetDown(broker);
        }
        try
        {
            var deadline = Stopwatch.StartNew();
            HttpStatusCode status;
            while ((status = (await node.GetAsync("/health/ready")).StatusCode) == HttpStatusCode.OK && deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(200);
            }
            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            Assert.Contains("Kafka cluster", await (await node.GetAsync("/health/ready")).Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            for (int broker = 1; broker <= 3; broker++)
            {
                cluster.SetUp(broker);
            }
        }
        var back = Stopwatch.StartNew();
        while ((await node.GetAsync("/health/ready")).StatusCode != HttpStatusCode.OK && back.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(200);
        }
        Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("/health/ready")).StatusCode);
    }
}
