using System.Net;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Gateway.Server.Tests.Kafka;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// HTTP consumer groups on the Kafka backend across stateless nodes (real processes; the cluster is another Gateway
/// process's Kafka listener): any request of a member may go to any node, partitions are never held by two members,
/// stale commits are refused, a killed node changes nothing for the members, a node paused past a rebalance cannot
/// commit for the generation it knew, a node started later knows every group, and Kafka's own group offsets carry what
/// was committed.
/// </summary>
public sealed class KafkaBackendGroupsTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new("gateway-kafka-groups-tests", create: false);
    private KafkaServer _cluster = null!;
    private ServerProcess _a = null!;
    private ServerProcess _b = null!;

    public async Task InitializeAsync()
    {
        _cluster = await KafkaServer.StartAsync();
        _a = await StartNodeAsync("a");
        _b = await StartNodeAsync("b");
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        await _cluster.DisposeAsync();
        _data.Dispose();
    }

    [Fact]
    public async Task Members_served_by_any_node_hold_disjoint_partitions_and_commits_are_the_Kafka_groups()
    {
        await Http.CreateTopicAsync(_a.Client, "six", 4);
        await SeeTopicAsync(_b.Client, "six");
        for (int p = 0; p < 4; p++)
        {
            await Http.ProduceAsync(_a.Client, "six", $$"""[{"partition":{{p}},"value":"p{{p}}-0"},{"partition":{{p}},"value":"p{{p}}-1"}]""");
        }

        // a joins through one node, b through the other; every later call of each goes to the node it did not use before.
        await JoinAsync(_a.Client, "a", "six");
        await JoinAsync(_b.Client, "b", "six");
        var a = await HeartbeatAsync(_b.Client, "a");
        var b = await HeartbeatAsync(_a.Client, "b");
        a = await HeartbeatAsync(_a.Client, "a");
        Assert.Equal((long)a["generation"]!, (long)b["generation"]!);
        var aHolds = Partitions(a);
        var bHolds = Partitions(b);
        Assert.Empty(aHolds.Intersect(bHolds));
        Assert.Equal([0, 1, 2, 3], aHolds.Concat(bHolds).Order());

        // a reads through b's node and commits through its own; the other node describes the commit at once.
        var fetched = Http.Records(await Http.GetJsonAsync(_b.Client, "/v1/groups/g/members/a/records?limit=100"));
        Assert.Equal(aHolds.Count * 2, fetched.Count);
        Assert.All(fetched, r => Assert.Contains((int)r!["partition"]!, aHolds));
        using (var commit = await _a.Client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)a["generation"]!}}}""")))
        {
            Assert.Equal(HttpStatusCode.OK, commit.StatusCode);
        }
        var group = await Http.GetJsonAsync(_b.Client, "/v1/groups/g");
        Assert.Equal(2, group["members"]!.AsArray().Count);
        Assert.All(aHolds, p => Assert.Equal(2, (long?)Committed(group, p)));

        // A commit for the generation before b joined is refused, whichever node takes it.
        using (var stale = await _b.Client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)a["generation"]! - 1}},"offsets":[{"topic":"six","partition":{{aHolds[0]}},"offset":0}]}""")))
        {
            await Http.AssertProblemAsync(stale, HttpStatusCode.Conflict, "stale_generation");
        }

        // Kafka's tools see the group: its committed offsets are the Kafka group's own.
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _cluster.Bootstrap }).Build())
        {
            // (Copied there just after the commit is answered: the groups log is what the commit waits for.)
            var deadline = DateTime.UtcNow.AddSeconds(10);
            List<TopicPartitionOffsetError> listed;
            do
            {
                listed = Assert.Single(await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("g", [.. aHolds.Select(p => new TopicPartition("six", p))])])).Partitions;
            }
            while (!listed.All(tpo => tpo.Offset.Value == 2) && DateTime.UtcNow < deadline && await Task.Delay(100).ContinueWith(_ => true));
            Assert.All(listed, tpo => Assert.Equal(2, tpo.Offset.Value));
        }

        // The node a joined through dies: a and b go on through the other; b leaves and a takes everything.
        _a.Kill();
        await HeartbeatAsync(_b.Client, "a");
        using (var leave = await _b.Client.DeleteAsync("/v1/groups/g/members/b"))
        {
            Assert.Equal(HttpStatusCode.NoContent, leave.StatusCode);
        }
        a = await HeartbeatAsync(_b.Client, "a");
        Assert.Equal([0, 1, 2, 3], Partitions(a));
        // It resumes after what it committed: only b's old partitions from their start.
        var rest = Http.Records(await Http.GetJsonAsync(_b.Client, "/v1/groups/g/members/a/records?limit=100"));
        Assert.Equal(bHolds.Count * 2, rest.Count);
        Assert.All(rest, r => Assert.Contains((int)r!["partition"]!, bHolds));
    }

    [Fact]
    public async Task A_node_paused_past_a_rebalance_cannot_commit_for_the_generation_it_knew_and_a_new_node_knows_every_group()
    {
        await Http.CreateTopicAsync(_a.Client, "two", 2);
        await SeeTopicAsync(_b.Client, "two");
        await Http.ProduceAsync(_a.Client, "two", """[{"partition":0,"value":"x"},{"partition":1,"value":"y"}]""");
        var a = await JoinAsync(_a.Client, "a", "two");
        long generation = (long)a["generation"]!;
        Assert.Equal([0, 1], Partitions(a));
        Assert.Equal(2, Http.Records(await Http.GetJsonAsync(_a.Client, "/v1/groups/g/members/a/records?limit=100")).Count);

        // Node a stands still with a's commit in hand (a GC pause, a frozen VM); meanwhile b joins through node b.
        await _a.PauseAsync();
        var commit = _a.Client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{generation}}}"""));
        await Task.Delay(300);
        await JoinAsync(_b.Client, "b", "two");
        await _a.ResumeAsync();
        using (var late = await commit)
        {
            await Http.AssertProblemAsync(late, HttpStatusCode.Conflict, "stale_generation");
        }
        var group = await Http.GetJsonAsync(_b.Client, "/v1/groups/g");
        Assert.Null(Committed(group, 0));
        Assert.Null(Committed(group, 1));

        // A node started now reads the groups log (and its snapshots) and describes the group as the others do.
        await using var c = await StartNodeAsync("c");
        var seen = await Http.GetJsonAsync(c.Client, "/v1/groups/g");
        Assert.Equal((long)group["generation"]!, (long)seen["generation"]!);
        Assert.Equal(
            group["members"]!.AsArray().Select(m => (string)m!["memberId"]!).Order(),
            seen["members"]!.AsArray().Select(m => (string)m!["memberId"]!).Order());
        // And serves the members from there on.
        var fromC = await HeartbeatAsync(c.Client, "b");
        Assert.Equal((long)group["generation"]!, (long)fromC["generation"]!);
    }

    [Fact]
    public async Task An_Idempotency_Key_retried_on_another_node_is_answered_from_the_first_attempt()
    {
        await Http.CreateTopicAsync(_a.Client, "keyed", 3);
        await SeeTopicAsync(_b.Client, "keyed");
        const string body = """{"records":[{"value":"one"},{"key":"k","value":"two"},{"partition":2,"value":"three"}]}""";

        var first = await SendKeyedAsync(_a.Client, "order-17", body);
        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.False(first.Replayed);
        // The retry lands on the other node: same offsets, marked replayed, nothing appended again.
        var retry = await SendKeyedAsync(_b.Client, "order-17", body);
        Assert.Equal(HttpStatusCode.OK, retry.Status);
        Assert.True(retry.Replayed);
        Assert.Equal(first.Body["offsets"]!.ToJsonString(), retry.Body["offsets"]!.ToJsonString());
        long total = 0;
        for (int p = 0; p < 3; p++)
        {
            total += Http.Records(await Http.GetJsonAsync(_b.Client, $"/v1/topics/keyed/partitions/{p}/records?offset=0")).Count;
        }
        Assert.Equal(3, total);

        // The same key with other content is refused on either node.
        var reused = await SendKeyedAsync(_b.Client, "order-17", """{"records":[{"value":"other"}]}""");
        Assert.Equal((HttpStatusCode)422, reused.Status);
        Assert.Equal("idempotency_key_reused", (string)reused.Body["code"]!);

        // Two nodes racing with one new key: one appends, the other is answered from it.
        var racing = await Task.WhenAll(SendKeyedAsync(_a.Client, "order-18", body), SendKeyedAsync(_b.Client, "order-18", body));
        Assert.All(racing, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.Single(racing, r => !r.Replayed);
        Assert.Equal(racing[0].Body["offsets"]!.ToJsonString(), racing[1].Body["offsets"]!.ToJsonString());
        total = 0;
        for (int p = 0; p < 3; p++)
        {
            total += Http.Records(await Http.GetJsonAsync(_a.Client, $"/v1/topics/keyed/partitions/{p}/records?offset=0")).Count;
        }
        Assert.Equal(6, total);
    }

    private static async Task<(HttpStatusCode Status, bool Replayed, JsonNode Body)> SendKeyedAsync(HttpClient node, string key, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/topics/keyed/records?acks=disk") { Content = Http.Json(body) };
        request.Headers.Add("Idempotency-Key", key);
        using var response = await node.SendAsync(request);
        bool replayed = response.Headers.TryGetValues("Idempotency-Replayed", out var values) && values.Contains("true");
        return (response.StatusCode, replayed, JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
    }

    private async Task<ServerProcess> StartNodeAsync(string name) =>
        await ServerProcess.StartAsync(Path.Combine(_data.Path, name),
            "--Storage:Backend=kafka", $"--Kafka:BootstrapServers={_cluster.Bootstrap}", "--Kafka:MetadataRefreshMs=300",
            "--Kafka:RequestTimeoutMs=10000", "--Kafka:GroupSnapshotIntervalMs=200");

    private static async Task SeeTopicAsync(HttpClient node, string topic)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await node.GetAsync($"/v1/topics/{topic}")).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
    }

    private static async Task<JsonNode> JoinAsync(HttpClient node, string member, string topic)
    {
        using var response = await node.PostAsync("/v1/groups/g/members", Http.Json($$"""{"topics":["{{topic}}"],"memberId":"{{member}}","sessionTimeoutMs":30000,"autoOffsetReset":"earliest"}"""));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!;
    }

    private static async Task<JsonNode> HeartbeatAsync(HttpClient node, string member)
    {
        using var response = await node.PostAsync($"/v1/groups/g/members/{member}/heartbeat", null);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!;
    }

    private static List<int> Partitions(JsonNode assignment) =>
        [.. assignment["assignments"]!.AsArray().Select(a => (int)a!["partition"]!).Order()];

    private static long? Committed(JsonNode group, int partition) =>
        (long?)group["offsets"]!.AsArray().Single(o => (int)o!["partition"]! == partition)!["committedOffset"];
}
