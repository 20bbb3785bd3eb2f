using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Xunit.Abstractions;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// Three Gateway processes on the Kafka backend over librdkafka's mock cluster (three brokers, replication factor
/// three), every request sent to the next node in turn (a round-robin balancer with no affinity), while a broker goes
/// down and up during produce, one node is killed with kill -9 and another is paused (SIGSTOP) during group
/// consumption. A checker then holds the run to the promises: every acknowledged record is in the log at the offset it
/// was acknowledged with, and none twice; every one was consumed by the group (at least once); committed offsets never
/// moved back; no partition was given to two members in one generation, and no member got records of a partition it
/// was not assigned.
/// </summary>
public sealed class KafkaRoundRobinTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Topic = "orders";
    private readonly TempDirectory _data = new("gateway-kafka-rr-tests", create: false);
    private IProducer<byte[], byte[]> _owner = null!;
    private string _bootstrap = "";
    private ServerProcess[] _nodes = [];

    public async Task InitializeAsync()
    {
        var config = new ProducerConfig { Acks = Acks.All, EnableIdempotence = true };
        config.Set("test.mock.num.brokers", "3");
        _owner = new ProducerBuilder<byte[], byte[]>(config).Build();
        using (var admin = new DependentAdminClientBuilder(_owner.Handle).Build())
        {
            _bootstrap = string.Join(",", admin.GetMetadata(TimeSpan.FromSeconds(10)).Brokers.Select(b => $"{b.Host}:{b.Port}"));
        }
        // Auto-created by the producer's metadata request (the mock takes no CreateTopics): 4 partitions, RF 3.
        await _owner.ProduceAsync(new TopicPartition(Topic, 0), new Message<byte[], byte[]> { Value = Encoding.UTF8.GetBytes("seed") });
        _nodes = await Task.WhenAll(new[] { "a", "b", "c" }.Select(name => ServerProcess.StartAsync(Path.Combine(_data.Path, name),
            "--Storage:Backend=kafka", $"--Kafka:BootstrapServers={_bootstrap}", "--Kafka:MetadataRefreshMs=300",
            "--Kafka:RequestTimeoutMs=5000", "--Kafka:GroupSnapshotIntervalMs=500")));
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.ResumeAsync();
            await node.DisposeAsync();
        }
        _owner.Dispose();
        _data.Dispose();
    }

    [Fact]
    public async Task Three_nodes_behind_round_robin_keep_every_promise_through_a_broker_outage_a_killed_node_and_a_paused_one()
    {
        foreach (var node in _nodes)
        {
            await SeeTopicAsync(node.Client);
        }
        var balancer = new RoundRobin(_nodes);
        var problems = new ConcurrentQueue<string>();
        var acknowledged = new ConcurrentDictionary<string, (int Partition, long Offset)>();
        var consumed = new ConcurrentDictionary<(int Partition, long Offset), string>();
        var assigned = new ConcurrentDictionary<(long Generation, int Partition), string>();
        var committed = new ConcurrentDictionary<int, long>();
        using var stopProducing = new CancellationTokenSource();
        using var stopConsuming = new CancellationTokenSource();
        int sequence = 0;
        int refused = 0;
        int unanswered = 0;

        async Task ProduceAsync()
        {
            while (!stopProducing.IsCancellationRequested)
            {
                int n = Interlocked.Increment(ref sequence);
                var (status, body) = await balancer.SendAsync(HttpMethod.Post, $"/v1/topics/{Topic}/records?acks=disk", $$"""{"records":[{"key":"k{{n}}","value":"v{{n}}"}]}""");
                if (status == HttpStatusCode.OK)
                {
                    var offset = body!["offsets"]![0]!;
                    acknowledged[$"v{n}"] = ((int)offset["partition"]!, (long)offset["offset"]!);
                }
                else if (status is null)
                {
                    Interlocked.Increment(ref unanswered);
                }
                else if (status == HttpStatusCode.ServiceUnavailable)
                {
                    Interlocked.Increment(ref refused);
                }
                else
                {
                    problems.Enqueue($"produce answered {status}: {body?.ToJsonString()}");
                }
            }
        }

        // A member commits exactly what it received. When a call gets no answer (its node died or froze), it cannot
        // know what the node did for it, so it stops, as a crashed client would, and a new incarnation joins: its
        // partitions go back to the group from the committed offsets once the old one's session runs out.
        async Task ConsumeAsync(string name)
        {
            for (int incarnation = 0; !stopConsuming.IsCancellationRequested; incarnation++)
            {
                string member = $"{name}-{incarnation}";
                var (joined, _) = await balancer.SendAsync(HttpMethod.Post, "/v1/groups/g/members",
                    $$"""{"topics":["{{Topic}}"],"memberId":"{{member}}","sessionTimeoutMs":6000,"autoOffsetReset":"earliest"}""");
                if (joined is not (HttpStatusCode.Created or HttpStatusCode.OK))
                {
                    await Task.Delay(200);
                    continue;
                }
                while (!stopConsuming.IsCancellationRequested)
                {
                    var (status, body) = await balancer.SendAsync(HttpMethod.Get, $"/v1/groups/g/members/{member}/records?limit=200&waitMs=200", null);
                    if (status is null)
                    {
                        break; // no answer: this incarnation is abandoned
                    }
                    if (status != HttpStatusCode.OK)
                    {
                        await Task.Delay(100);
                        continue;
                    }
                    long generation = (long)body!["generation"]!;
                    var holds = body["assignments"]!.AsArray().Select(a => (int)a!["partition"]!).ToHashSet();
                    foreach (int partition in holds)
                    {
                        string holder = assigned.GetOrAdd((generation, partition), name + "/" + member);
                        if (holder != name + "/" + member)
                        {
                            problems.Enqueue($"generation {generation}: partition {partition} given to {holder} and {member}");
                        }
                    }
                    var next = new Dictionary<int, long>();
                    foreach (var record in body["records"]!.AsArray())
                    {
                        int partition = (int)record!["partition"]!;
                        long offset = (long)record["offset"]!;
                        if (!holds.Contains(partition))
                        {
                            problems.Enqueue($"{member} got partition {partition} offset {offset}, assigned {string.Join(",", holds)}");
                        }
                        consumed[(partition, offset)] = record["value"] is { } value ? (string)value! : "(binary)";
                        next[partition] = offset + 1;
                    }
                    if (next.Count > 0)
                    {
                        string offsets = string.Join(",", next.Select(p => $$"""{"topic":"{{Topic}}","partition":{{p.Key}},"offset":{{p.Value}}}"""));
                        var (commit, answer) = await balancer.SendAsync(HttpMethod.Post, $"/v1/groups/g/members/{member}/offsets", $$"""{"generation":{{generation}},"offsets":[{{offsets}}]}""");
                        if (commit is null)
                        {
                            break;
                        }
                        if (commit is not (HttpStatusCode.OK or HttpStatusCode.Conflict or HttpStatusCode.ServiceUnavailable or HttpStatusCode.NotFound))
                        {
                            problems.Enqueue($"commit answered {commit}: {answer?.ToJsonString()}");
                        }
                    }
                }
            }
        }

        // Committed offsets as node a (never killed or paused) describes them, sampled: they never move back.
        async Task SampleAsync()
        {
            while (!stopConsuming.IsCancellationRequested)
            {
                try
                {
                    using var response = await _nodes[0].Client.GetAsync("/v1/groups/g", stopConsuming.Token);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        foreach (var offset in JsonNode.Parse(await response.Content.ReadAsStringAsync())!["offsets"]!.AsArray())
                        {
                            if (offset!["committedOffset"] is { } value)
                            {
                                int partition = (int)offset["partition"]!;
                                long now = (long)value;
                                long before = committed.GetValueOrDefault(partition, -1);
                                if (now < before)
                                {
                                    problems.Enqueue($"partition {partition}'s committed offset moved back from {before} to {now}");
                                }
                                committed[partition] = Math.Max(now, before);
                            }
                        }
                    }
                    await Task.Delay(250, stopConsuming.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }

        var producers = Enumerable.Range(0, 3).Select(_ => Task.Run(ProduceAsync)).ToList();
        var members = new[] { "m1", "m2", "m3" }.Select(name => Task.Run(() => ConsumeAsync(name))).ToList();
        var sampler = Task.Run(SampleAsync);

        // The chaos, on a timeline: a broker (partition 1's leader) down and up during produce; node b killed; node c
        // paused past the members' sessions and resumed. The balancer takes a node out as its health check would.
        var cluster = new MockCluster(_owner);
        int leader;
        using (var admin = new DependentAdminClientBuilder(_owner.Handle).Build())
        {
            leader = admin.GetMetadata(Topic, TimeSpan.FromSeconds(10)).Topics[0].Partitions.Single(p => p.PartitionId == 1).Leader;
        }
        await Task.Delay(3_000);
        cluster.SetDown(leader);
        await Task.Delay(4_000);
        cluster.SetUp(leader);
        await Task.Delay(3_000);
        _nodes[1].Kill();
        balancer.TakeOut(1);
        await Task.Delay(3_000);
        await _nodes[2].PauseAsync();
        await Task.Delay(1_000);
        balancer.TakeOut(2);
        await Task.Delay(7_000);
        await _nodes[2].ResumeAsync();
        balancer.PutBack(2);
        await Task.Delay(3_000);
        await stopProducing.CancelAsync();
        await Task.WhenAll(producers);

        // The group catches up: every partition's committed offset reaches its end.
        var ends = new Dictionary<int, long>();
        for (int p = 0; p < 4; p++)
        {
            ends[p] = (long)(await Http.GetJsonAsync(_nodes[0].Client, $"/v1/topics/{Topic}/partitions/{p}/offsets"))["endOffset"]!;
        }
        var drain = Stopwatch.StartNew();
        while (ends.Any(e => committed.GetValueOrDefault(e.Key, -1) < e.Value) && drain.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(250);
        }
        await stopConsuming.CancelAsync();
        await Task.WhenAll(members);
        await sampler;

        output.WriteLine($"acknowledged {acknowledged.Count} records, 503 {refused}, unanswered {unanswered}; consumed {consumed.Count} offsets; " +
            $"generations {assigned.Keys.Select(k => k.Generation).Distinct().Count()}, member incarnations {assigned.Values.Distinct().Count()}; committed {string.Join(", ", committed.OrderBy(c => c.Key).Select(c => $"{c.Key}:{c.Value}"))}");
        foreach (string call in balancer.Unanswered.Take(40))
        {
            output.WriteLine(call);
        }
        Assert.True(acknowledged.Count > 100, $"only {acknowledged.Count} records were acknowledged");
        Assert.Empty(problems);
        Assert.All(ends, e => Assert.True(committed.GetValueOrDefault(e.Key, -1) >= e.Value, $"partition {e.Key}: committed {committed.GetValueOrDefault(e.Key, -1)}, end {e.Value}"));

        // The log: every acknowledged record at its offset, and no value twice.
        var stored = new Dictionary<(int Partition, long Offset), string>();
        for (int p = 0; p < 4; p++)
        {
            for (long offset = 0; offset < ends[p];)
            {
                var records = Http.Records(await Http.GetJsonAsync(_nodes[0].Client, $"/v1/topics/{Topic}/partitions/{p}/records?offset={offset}&limit=1000"));
                Assert.NotEmpty(records);
                foreach (var record in records)
                {
                    offset = (long)record!["offset"]! + 1;
                    stored[(p, (long)record["offset"]!)] = record["value"] is { } value ? (string)value! : "(binary)";
                }
            }
        }
        foreach (var (value, (partition, offset)) in acknowledged)
        {
            Assert.True(stored.TryGetValue((partition, offset), out string? there) && there == value, $"{value}, acknowledged at {partition}/{offset}, is not there ({there})");
            Assert.True(consumed.TryGetValue((partition, offset), out string? read) && read == value, $"{value} at {partition}/{offset} was never consumed by the group");
        }
        var twice = stored.Values.Where(v => v != "(binary)").GroupBy(v => v).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, $"stored twice: {string.Join(", ", twice.Take(10))}");
    }

    private static async Task SeeTopicAsync(HttpClient node)
    {
        var deadline = Stopwatch.StartNew();
        while ((await node.GetAsync($"/v1/topics/{Topic}")).StatusCode != HttpStatusCode.OK && deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// A balancer with no affinity: each request goes to the next node in turn that is in service. A request that gets
    /// no answer within 4 s (the node died or froze) is not retried: the caller cannot know whether it took effect.
    /// </summary>
    private sealed class RoundRobin(ServerProcess[] nodes)
    {
        private readonly int[] _out = new int[nodes.Length];

        /// <summary>Calls that got no answer, for the test's output.</summary>
        public ConcurrentQueue<string> Unanswered { get; } = new();

        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        private int _next;

        public void TakeOut(int node) => Volatile.Write(ref _out[node], 1);

        public void PutBack(int node) => Volatile.Write(ref _out[node], 0);

        public async Task<(HttpStatusCode? Status, JsonNode? Body)> SendAsync(HttpMethod method, string path, string? json)
        {
            for (int tried = 0; tried < nodes.Length; tried++)
            {
                int node = (int)((uint)Interlocked.Increment(ref _next) % (uint)nodes.Length);
                if (Volatile.Read(ref _out[node]) == 1)
                {
                    continue;
                }
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(4));
                try
                {
                    using var request = new HttpRequestMessage(method, path) { Content = json is null ? null : Http.Json(json) };
                    using var response = await nodes[node].Client.SendAsync(request, timeout.Token);
                    string text = await response.Content.ReadAsStringAsync(timeout.Token);
                    return (response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null);
                }
                catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
                {
                    Unanswered.Enqueue($"{Clock.Elapsed.TotalSeconds:F1}s node {node} {method} {path}: {ex.GetType().Name}");
                    return (null, null);
                }
            }
            await Task.Delay(100);
            return (null, null);
        }
    }
}
