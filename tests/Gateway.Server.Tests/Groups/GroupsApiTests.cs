using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Server.Tests.Groups;

public sealed class GroupsApiTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly TempDirectory _dataDirectory = new("gateway-groups-api-tests", create: false);
    private GatewayFactory _factory = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        Start();
        await Http.CreateTopicAsync(_client, "six", 6);
    }

    public async Task DisposeAsync()
    {
        await _factory.DisposeAsync();
        _dataDirectory.Dispose();
    }

    private void Start()
    {
        _factory = new GatewayFactory(new() { ["Groups:MinSessionTimeoutMs"] = "100" }, _time, _dataDirectory.Path);
        _client = _factory.CreateClient();
    }

    private async Task RestartAsync()
    {
        await _factory.DisposeAsync();
        Start();
    }

    private async Task<JsonNode> JoinAsync(string member, string topics = "[\"six\"]", string reset = "earliest", int sessionTimeoutMs = 10_000)
    {
        using var response = await _client.PostAsync("/v1/groups/g/members", Http.Json($$"""{"topics":{{topics}},"memberId":"{{member}}","sessionTimeoutMs":{{sessionTimeoutMs}},"autoOffsetReset":"{{reset}}"}"""));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        return JsonNode.Parse(text)!;
    }

    private async Task<JsonNode> HeartbeatAsync(string member)
    {
        using var response = await _client.PostAsync($"/v1/groups/g/members/{member}/heartbeat", null);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!;
    }

    private Task<JsonNode> FetchAsync(string member, string query = "limit=10000") => Http.GetJsonAsync(_client, $"/v1/groups/g/members/{member}/records?{query}");

    private static HashSet<int> Partitions(JsonNode member) => [.. member["assignments"]!.AsArray().Select(a => (int)a!["partition"]!)];

    private async Task ProduceToEachPartitionAsync(int perPartition)
    {
        for (int p = 0; p < 6; p++)
        {
            string records = "[" + string.Join(",", Enumerable.Range(0, perPartition).Select(i => $$"""{"value":"p{{p}}-{{i}}"}""")) + "]";
            using var response = await _client.PostAsync($"/v1/topics/six/partitions/{p}/records", Http.Json($$"""{"records":{{records}}}"""));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task Two_members_split_six_partitions_and_never_read_the_same_one()
    {
        await ProduceToEachPartitionAsync(3);
        var a = await JoinAsync("a");
        Assert.Equal(6, Partitions(a).Count);
        Assert.Equal(18, Http.Records(await FetchAsync("a")).Count);

        var b = await JoinAsync("b");
        Assert.Empty(Partitions(b)); // a has not seen the new generation yet
        Assert.Empty(Http.Records(await FetchAsync("b")));

        var aNow = await FetchAsync("a"); // a fetch shows a the new generation: it lets go of b's share
        Assert.Equal(3, Partitions(aNow).Count);
        var bNow = await FetchAsync("b");
        Assert.Equal(3, Partitions(bNow).Count);
        Assert.Empty(Partitions(aNow).Intersect(Partitions(bNow)));
        Assert.Equal(9, Http.Records(bNow).Count); // b starts from the committed offsets: nothing committed, so earliest
        Assert.All(Http.Records(bNow), r => Assert.Contains((int)r!["partition"]!, Partitions(bNow)));

        var group = await Http.GetJsonAsync(_client, "/v1/groups/g");
        Assert.Equal(2, group["members"]!.AsArray().Count);
        Assert.Equal((long?)bNow["generation"], (long?)group["generation"]);
    }

    [Fact]
    public async Task A_member_that_stops_heartbeating_loses_its_partitions_and_its_late_commit_is_rejected()
    {
        await JoinAsync("a");
        var b = await JoinAsync("b");
        await HeartbeatAsync("a");
        b = await HeartbeatAsync("b");
        long generation = (long)b["generation"]!;
        int bPartition = Partitions(b).First();

        for (int i = 0; i < 6; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(2));
            await HeartbeatAsync("a");
        }
        Assert.Equal(6, Partitions(await HeartbeatAsync("a")).Count);
        using var late = await _client.PostAsync("/v1/groups/g/members/b/offsets", Http.Json($$"""{"generation":{{generation}},"offsets":[{"topic":"six","partition":{{bPartition}},"offset":0}]}"""));
        await Http.AssertProblemAsync(late, HttpStatusCode.NotFound, "unknown_member");
        using var heartbeat = await _client.PostAsync("/v1/groups/g/members/b/heartbeat", null);
        await Http.AssertProblemAsync(heartbeat, HttpStatusCode.NotFound, "unknown_member");
    }

    [Fact]
    public async Task Commits_are_fenced_by_generation_and_assignment()
    {
        await ProduceToEachPartitionAsync(2);
        var a = await JoinAsync("a");
        long first = (long)a["generation"]!;
        await JoinAsync("b");
        using (var stale = await _client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{first}},"offsets":[{"topic":"six","partition":0,"offset":1}]}""")))
        {
            var problem = await Http.AssertProblemAsync(stale, HttpStatusCode.Conflict, "stale_generation");
            Assert.Equal(first + 1, (long?)problem["currentGeneration"]);
        }
        var current = await HeartbeatAsync("a");
        int notMine = Enumerable.Range(0, 6).First(p => !Partitions(current).Contains(p));
        using (var foreign = await _client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)current["generation"]!}},"offsets":[{"topic":"six","partition":{{notMine}},"offset":1}]}""")))
        {
            await Http.AssertProblemAsync(foreign, HttpStatusCode.Conflict, "partition_not_assigned");
        }
        var group = await Http.GetJsonAsync(_client, "/v1/groups/g");
        Assert.All(group["offsets"]!.AsArray(), o => Assert.Null(o!["committedOffset"]));
    }

    [Fact]
    public async Task Lag_follows_produce_fetch_and_a_commit_of_what_was_fetched()
    {
        var a = await JoinAsync("a");
        await ProduceToEachPartitionAsync(4);
        var group = await Http.GetJsonAsync(_client, "/v1/groups/g");
        Assert.All(group["offsets"]!.AsArray(), o =>
        {
            Assert.Equal(4, (long?)o!["endOffset"]);
            Assert.Null(o["committedOffset"]);
        });

        var fetched = await FetchAsync("a", "limit=10");
        Assert.Equal(10, Http.Records(fetched).Count);
        using (var commit = await _client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)a["generation"]!}}}""")))
        {
            Assert.Equal(HttpStatusCode.OK, commit.StatusCode);
        }
        group = await Http.GetJsonAsync(_client, "/v1/groups/g");
        var offsets = group["offsets"]!.AsArray();
        Assert.Equal(10, offsets.Sum(o => (long?)o!["committedOffset"] ?? 0));
        Assert.Equal(24 - 10, offsets.Sum(o => (long)o!["lag"]!));
    }

    [Fact]
    public async Task A_member_fetch_long_polls_across_all_its_partitions()
    {
        await JoinAsync("a", reset: "latest");
        Assert.Empty(Http.Records(await FetchAsync("a")));
        var poll = _client.GetAsync("/v1/groups/g/members/a/records?waitMs=30000");
        await Task.Delay(200);
        Assert.False(poll.IsCompleted);
        using (var produced = await _client.PostAsync("/v1/topics/six/partitions/4/records", Http.Json("""{"records":[{"value":"news"}]}""")))
        {
            Assert.Equal(HttpStatusCode.OK, produced.StatusCode);
        }
        using var response = await poll.WaitAsync(TimeSpan.FromSeconds(20));
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var record = Http.Records(body).Single()!;
        Assert.Equal("news", (string?)record["value"]);
        Assert.Equal(4, (int?)record["partition"]);
    }

    [SkippableFact]
    public async Task A_restart_fences_generations_granted_before_it()
    {
        GatewayFactory.RequireEmbedded("restart of the node that keeps the groups (on the kafka backend the groups log keeps them; no node restarts them)");
        var a = await JoinAsync("a");
        long before = (long)a["generation"]!;
        await RestartAsync();
        using (var stale = await _client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{before}},"offsets":[{"topic":"six","partition":0,"offset":0}]}""")))
        {
            await Http.AssertProblemAsync(stale, HttpStatusCode.Conflict, "stale_generation");
        }
        var renewed = await HeartbeatAsync("a");
        Assert.True((long)renewed["generation"]! > before);
        using var ok = await _client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)renewed["generation"]!}},"offsets":[{"topic":"six","partition":0,"offset":0}]}"""));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Reset_to_earliest_replays_everything_to_an_active_member()
    {
        await ProduceToEachPartitionAsync(2);
        var a = await JoinAsync("a");
        Assert.Equal(12, Http.Records(await FetchAsync("a")).Count);
        using (var commit = await _client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)a["generation"]!}}}""")))
        {
            Assert.Equal(HttpStatusCode.OK, commit.StatusCode);
        }
        Assert.Empty(Http.Records(await FetchAsync("a")));

        using (var reset = await _client.PutAsync("/v1/groups/g/offsets", Http.Json("""{"topic":"six","to":"earliest"}""")))
        {
            Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        }
        Assert.Equal(12, Http.Records(await FetchAsync("a")).Count);

        using (var toOffset = await _client.PutAsync("/v1/groups/g/offsets", Http.Json("""{"topic":"six","partitions":[3],"to":{"offset":1}}""")))
        {
            Assert.Equal(HttpStatusCode.OK, toOffset.StatusCode);
        }
        var replay = Http.Records(await FetchAsync("a"));
        Assert.Equal("p3-1", (string?)replay.Single()!["value"]);

        using var bad = await _client.PutAsync("/v1/groups/g/offsets", Http.Json("""{"topic":"six","to":"yesterday"}"""));
        await Http.AssertProblemAsync(bad, HttpStatusCode.BadRequest, "invalid_reset_target");
        using var far = await _client.PutAsync("/v1/groups/g/offsets", Http.Json("""{"topic":"six","to":{"offset":99}}"""));
        await Http.AssertProblemAsync(far, HttpStatusCode.RequestedRangeNotSatisfiable, "offset_out_of_range");
    }

    [Fact]
    public async Task A_position_below_the_begin_offset_moves_to_it_and_the_answer_says_so()
    {
        await ProduceToEachPartitionAsync(5);
        var a = await JoinAsync("a");
        using (var commit = await _client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)a["generation"]!}},"offsets":[{"topic":"six","partition":2,"offset":1}]}""")))
        {
            Assert.Equal(HttpStatusCode.OK, commit.StatusCode);
        }
        using (var deleted = await _client.DeleteAsync("/v1/topics/six/partitions/2/records?before=3"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        var fetched = await FetchAsync("a");
        var reset = fetched["resets"]!.AsArray().Single()!;
        Assert.Equal(2, (int?)reset["partition"]);
        Assert.Equal(1, (long?)reset["offset"]);
        Assert.Equal(3, (long?)reset["resetTo"]);
        Assert.Equal(["p2-3", "p2-4"], Http.Records(fetched).Where(r => (int)r!["partition"]! == 2).Select(r => (string?)r!["value"]));
    }

    [Fact]
    public async Task Growing_a_topic_rebalances_and_deleting_it_drops_its_committed_offsets()
    {
        await Http.CreateTopicAsync(_client, "two", 2);
        var a = await JoinAsync("a", "[\"six\",\"two\"]");
        Assert.Equal(8, a["assignments"]!.AsArray().Count);
        using (var commit = await _client.PostAsync("/v1/groups/g/members/a/offsets", Http.Json($$"""{"generation":{{(long)a["generation"]!}},"offsets":[{"topic":"two","partition":1,"offset":0}]}""")))
        {
            Assert.Equal(HttpStatusCode.OK, commit.StatusCode);
        }
        using (var grow = await Http.PatchAsync(_client, "/v1/topics/two", """{"partitions":3}"""))
        {
            Assert.Equal(HttpStatusCode.OK, grow.StatusCode);
        }
        var grown = await HeartbeatAsync("a");
        Assert.Equal(9, grown["assignments"]!.AsArray().Count);
        Assert.True((long)grown["generation"]! > (long)a["generation"]!);

        using (var delete = await _client.DeleteAsync("/v1/topics/two"))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        Assert.Equal(6, (await HeartbeatAsync("a"))["assignments"]!.AsArray().Count);
        var group = await Http.GetJsonAsync(_client, "/v1/groups/g");
        Assert.DoesNotContain(group["offsets"]!.AsArray(), o => (string?)o!["topic"] == "two");
    }

    [Fact]
    public async Task Groups_are_listed_described_and_deleted_once_empty()
    {
        await JoinAsync("a");
        var list = await Http.GetJsonAsync(_client, "/v1/groups");
        Assert.Equal("g", (string?)list["groups"]![0]!["name"]);
        using (var busy = await _client.DeleteAsync("/v1/groups/g"))
        {
            await Http.AssertProblemAsync(busy, HttpStatusCode.Conflict, "group_not_empty");
        }
        using (var leave = await _client.DeleteAsync("/v1/groups/g/members/a"))
        {
            Assert.Equal(HttpStatusCode.NoContent, leave.StatusCode);
        }
        using (var delete = await _client.DeleteAsync("/v1/groups/g"))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        await Http.GetProblemAsync(_client, "/v1/groups/g", HttpStatusCode.NotFound, "group_not_found");
    }

    [Fact]
    public async Task Bad_group_requests_get_clear_codes()
    {
        await Http.PostProblemAsync(_client, "/v1/groups/g/members", Http.Json("""{"topics":["nope"]}"""), HttpStatusCode.NotFound, "topic_not_found");
        await Http.PostProblemAsync(_client, "/v1/groups/g/members", Http.Json("""{"topics":[]}"""), HttpStatusCode.BadRequest, "invalid_request");
        await Http.PostProblemAsync(_client, "/v1/groups/g/members", Http.Json("""{"topics":["six"],"sessionTimeoutMs":1}"""), HttpStatusCode.BadRequest, "invalid_session_timeout");
        await Http.PostProblemAsync(_client, "/v1/groups/g/members", Http.Json("""{"topics":["six"],"autoOffsetReset":"never"}"""), HttpStatusCode.BadRequest, "invalid_json");
        await Http.PostProblemAsync(_client, "/v1/groups/bad%20name/members", Http.Json("""{"topics":["six"]}"""), HttpStatusCode.BadRequest, "invalid_group_name");
        await Http.PostProblemAsync(_client, "/v1/groups/g/members/nobody/heartbeat", Http.Json("{}"), HttpStatusCode.NotFound, "unknown_member");
        await Http.GetProblemAsync(_client, "/v1/groups/g/members/nobody/records", HttpStatusCode.NotFound, "unknown_member");
        await Http.PostProblemAsync(_client, "/v1/groups/g/members/nobody/offsets", Http.Json("""{"offsets":[]}"""), HttpStatusCode.BadRequest, "invalid_request");
    }
}
