using System.Net;
using System.Text.Json.Nodes;

namespace Gateway.Server.Tests.Topics;

public sealed class TopicsApiTests : IAsyncLifetime
{
    private readonly GatewayFactory _factory = new();
    private HttpClient _client = null!;

    public Task InitializeAsync()
    {
        _client = _factory.CreateClient();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task Create_describe_list_and_delete_a_topic()
    {
        bool embedded = GatewayFactory.Backend == "embedded";
        if (!embedded)
        {
            // A Kafka cluster keeps no acks per topic: refused, saying so, and nothing made.
            await Http.PostProblemAsync(_client, "/v1/topics", Http.Json("""{"name":"orders","config":{"acks":"memory"}}"""), HttpStatusCode.NotImplemented, "not_supported");
            await Http.GetProblemAsync(_client, "/v1/topics/orders", HttpStatusCode.NotFound, "topic_not_found");
        }
        string acks = embedded ? "memory" : "disk";
        using var created = await _client.PostAsync("/v1/topics", Http.Json($$$"""{"name":"orders","partitions":3,"config":{"retentionMs":3600000,"acks":"{{{acks}}}"}}"""));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.EndsWith("/v1/topics/orders", created.Headers.Location!.ToString(), StringComparison.Ordinal);

        var described = await Http.GetJsonAsync(_client, "/v1/topics/orders");
        Assert.Equal("orders", (string?)described["name"]);
        Assert.Equal(3600000, (long?)described["config"]!["retentionMs"]);
        Assert.Equal(-1, (long?)described["config"]!["retentionBytes"]);
        Assert.Equal(acks, (string?)described["config"]!["acks"]);
        var partitions = described["partitions"]!.AsArray();
        Assert.Equal(3, partitions.Count);
        Assert.All(partitions, p =>
        {
            Assert.Equal(0, (long?)p!["beginOffset"]);
            Assert.Equal(0, (long?)p["endOffset"]);
        });

        var list = await Http.GetJsonAsync(_client, "/v1/topics");
        Assert.Equal(["orders"], list["topics"]!.AsArray().Select(t => (string?)t!["name"]));

        using var deleted = await _client.DeleteAsync("/v1/topics/orders");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await Http.GetProblemAsync(_client, "/v1/topics/orders", HttpStatusCode.NotFound, "topic_not_found");
        if (embedded)
        {
            Assert.False(Directory.Exists(Path.Combine(_factory.DataDirectory, "topics", "orders")));
        }
        using var again = await _client.DeleteAsync("/v1/topics/orders");
        await Http.AssertProblemAsync(again, HttpStatusCode.NotFound, "topic_not_found");
    }

    [Theory]
    [InlineData("{\"acks\":7}", "acks")]
    [InlineData("{\"acks\":3}", "acks")]
    [InlineData("{\"acks\":\"1\"}", "acks")]
    [InlineData("{\"acks\":\"Disk\"}", "acks")]
    [InlineData("{\"retentionMs\":\"5\"}", "retentionMs")]
    [InlineData("{\"retentionMs\":1.5}", "retentionMs")]
    [InlineData("{\"retentionBytes\":0}", "retentionBytes")]
    [InlineData("{\"maxRecordBytes\":true}", "maxRecordBytes")]
    public async Task Every_config_value_is_validated_strictly_on_create_and_change(string config, string key)
    {
        var created = await Http.PostProblemAsync(_client, "/v1/topics", Http.Json($$"""{"name":"strict","config":{{config}}}"""), HttpStatusCode.BadRequest, "invalid_config");
        Assert.Equal(key, (string?)created["key"]);
        await Http.GetProblemAsync(_client, "/v1/topics/strict", HttpStatusCode.NotFound, "topic_not_found");

        await Http.CreateTopicAsync(_client, "kept", config: """{"acks":"disk"}""");
        using var patched = await Http.PatchAsync(_client, "/v1/topics/kept", $$"""{"config":{{config}}}""");
        Assert.Equal(key, (string?)(await Http.AssertProblemAsync(patched, HttpStatusCode.BadRequest, "invalid_config"))["key"]);
        Assert.Equal("disk", (string?)(await Http.GetJsonAsync(_client, "/v1/topics/kept"))["config"]!["acks"]);
    }

    [Fact]
    public async Task Creating_an_existing_topic_is_a_conflict()
    {
        await Http.CreateTopicAsync(_client, "dup");
        await Http.PostProblemAsync(_client, "/v1/topics", Http.Json("""{"name":"dup"}"""), HttpStatusCode.Conflict, "topic_exists");
    }

    [Theory]
    [InlineData("\".\"")]
    [InlineData("\"..\"")]
    [InlineData("\"../x\"")]
    [InlineData("\"a b\"")]
    [InlineData("\"\"")]
    [InlineData("null")]
    [InlineData("\"na\\u00efve\"")]
    [InlineData("\"nul\\u0000\"")]
    public async Task Bad_topic_names_are_refused(string name)
    {
        await Http.PostProblemAsync(_client, "/v1/topics", Http.Json($$"""{"name":{{name}}}"""), HttpStatusCode.BadRequest, "invalid_topic_name");
        Assert.Empty((await Http.GetJsonAsync(_client, "/v1/topics"))["topics"]!.AsArray());
        if (GatewayFactory.Backend == "embedded")
        {
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_factory.DataDirectory, "topics")));
        }
    }

    [Fact]
    public async Task A_name_of_250_characters_is_refused_and_249_accepted()
    {
        await Http.PostProblemAsync(_client, "/v1/topics", Http.Json($$"""{"name":"{{new string('a', 250)}}"}"""), HttpStatusCode.BadRequest, "invalid_topic_name");
        await Http.CreateTopicAsync(_client, new string('a', 249));
    }

    [Theory]
    [InlineData("""{"name":"t","partitions":0}""", "invalid_partition_count")]
    [InlineData("""{"name":"t","partitions":100000}""", "invalid_partition_count")]
    [InlineData("""{"name":"t","config":{"retentionMs":0}}""", "invalid_config")]
    [InlineData("""{"name":"t","config":{"retentionBytes":-2}}""", "invalid_config")]
    [InlineData("""{"name":"t","config":{"maxRecordBytes":0}}""", "invalid_config")]
    [InlineData("""{"name":"t","config":{"maxRecordBytes":1000000000}}""", "invalid_config")]
    [InlineData("""{"name":"t","config":{"acks":"sometimes"}}""", "invalid_config")]
    [InlineData("""{"name":"t","colour":"blue"}""", "invalid_json")]
    [InlineData("""{"name":"t",""", "invalid_json")]
    [InlineData("""[1,2]""", "invalid_json")]
    public async Task Bad_create_requests_get_a_clear_code(string body, string code)
    {
        await Http.PostProblemAsync(_client, "/v1/topics", Http.Json(body), HttpStatusCode.BadRequest, code);
    }

    [Fact]
    public async Task Patch_changes_settings_and_grows_partitions_but_never_shrinks()
    {
        await Http.CreateTopicAsync(_client, "grow", 2);
        using (var patched = await Http.PatchAsync(_client, "/v1/topics/grow", """{"partitions":4,"config":{"maxRecordBytes":2048}}"""))
        {
            Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
            var body = JsonNode.Parse(await patched.Content.ReadAsStringAsync())!;
            Assert.Equal(4, body["partitions"]!.AsArray().Count);
            Assert.Equal(2048, (int?)body["config"]!["maxRecordBytes"]);
            Assert.Equal("disk", (string?)body["config"]!["acks"]);
        }
        await Http.ProduceAsync(_client, "grow", """[{"partition":3,"value":"on the new partition"}]""");
        using var shrink = await Http.PatchAsync(_client, "/v1/topics/grow", """{"partitions":1}""");
        await Http.AssertProblemAsync(shrink, HttpStatusCode.BadRequest, "partition_count_decrease");
        using var missing = await Http.PatchAsync(_client, "/v1/topics/nope", """{"partitions":1}""");
        await Http.AssertProblemAsync(missing, HttpStatusCode.NotFound, "topic_not_found");
    }

    [Fact]
    public async Task Offsets_for_a_timestamp_and_deleting_records_before_an_offset()
    {
        await Http.CreateTopicAsync(_client, "times");
        await Http.ProduceAsync(_client, "times", """[{"value":"a","timestamp":1000},{"value":"b","timestamp":2000},{"value":"c","timestamp":3000}]""");

        var offsets = await Http.GetJsonAsync(_client, "/v1/topics/times/partitions/0/offsets?timestamp=1500");
        Assert.Equal(1, (long?)offsets["offset"]);
        Assert.Equal(0, (long?)offsets["beginOffset"]);
        Assert.Equal(3, (long?)offsets["endOffset"]);
        var late = await Http.GetJsonAsync(_client, "/v1/topics/times/partitions/0/offsets?timestamp=9000");
        Assert.Equal(3, (long?)late["offset"]);

        using (var deleted = await _client.DeleteAsync("/v1/topics/times/partitions/0/records?before=2"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
            Assert.Equal(2, (long?)JsonNode.Parse(await deleted.Content.ReadAsStringAsync())!["beginOffset"]);
        }
        var problem = await Http.GetProblemAsync(_client, "/v1/topics/times/partitions/0/records?offset=1", HttpStatusCode.RequestedRangeNotSatisfiable, "offset_out_of_range");
        Assert.Equal(2, (long?)problem["beginOffset"]);
        Assert.Equal(3, (long?)problem["endOffset"]);
        var rest = await Http.GetJsonAsync(_client, "/v1/topics/times/partitions/0/records");
        Assert.Equal(["c"], Http.Records(rest).Select(r => (string?)r!["value"]));
        if (GatewayFactory.Backend == "embedded")
        {
            // The kafka backend does not read the cluster's log directories or first records to describe a topic (README).
            var partition = (await Http.GetJsonAsync(_client, "/v1/topics/times"))["partitions"]![0]!;
            Assert.Equal(3000, (long?)partition["oldestTimestamp"]);
            Assert.True((long)partition["sizeOnDiskBytes"]! > 0);
        }

        using var tooFar = await _client.DeleteAsync("/v1/topics/times/partitions/0/records?before=99");
        await Http.AssertProblemAsync(tooFar, HttpStatusCode.RequestedRangeNotSatisfiable, "offset_out_of_range");
        using var noBefore = await _client.DeleteAsync("/v1/topics/times/partitions/0/records");
        await Http.AssertProblemAsync(noBefore, HttpStatusCode.BadRequest, "missing_parameter");
        using var badPartition = await _client.DeleteAsync("/v1/topics/times/partitions/7/records?before=1");
        await Http.AssertProblemAsync(badPartition, HttpStatusCode.NotFound, "partition_not_found");
    }

    [SkippableFact]
    public async Task Retention_runs_in_the_background_and_fetches_below_it_are_out_of_range()
    {
        GatewayFactory.RequireEmbedded("retention of its own (the cluster applies retention.ms by its clock, not the test's)");
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var factory = new GatewayFactory(new() { ["Storage:RetentionCheckIntervalMs"] = "1000" }, time);
        using var client = factory.CreateClient();
        await Http.CreateTopicAsync(client, "aging", 1, """{"retentionMs":60000}""");
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // Old records spanning more than one index interval (4 KiB), so retention can cut between them and the new one.
        string old = new('o', 5000);
        for (int i = 0; i < 3; i++)
        {
            await Http.ProduceAsync(client, "aging", $$"""[{"value":"{{old}}","timestamp":{{now - 3_600_000}}}]""");
        }
        await Http.ProduceAsync(client, "aging", $$"""[{"value":"new","timestamp":{{now}}}]""");

        long begin = 0;
        for (int i = 0; i < 100 && begin == 0; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(20);
            begin = (long)(await Http.GetJsonAsync(client, "/v1/topics/aging/partitions/0/offsets"))["beginOffset"]!;
        }
        Assert.Equal(3, begin);
        var problem = await Http.GetProblemAsync(client, "/v1/topics/aging/partitions/0/records?offset=0", HttpStatusCode.RequestedRangeNotSatisfiable, "offset_out_of_range");
        Assert.Equal(3, (long?)problem["beginOffset"]);
        var kept = await Http.GetJsonAsync(client, "/v1/topics/aging/partitions/0/records");
        Assert.Equal(["new"], Http.Records(kept).Select(r => (string?)r!["value"]));
        var described = (await Http.GetJsonAsync(client, "/v1/topics/aging"))["partitions"]![0]!;
        Assert.Equal(now, (long?)described["oldestTimestamp"]);
    }

    [Fact]
    public async Task Past_Metrics_MaxPartitionSeries_partitions_metrics_show_topics_and_groups_per_topic_only()
    {
        await using var factory = new GatewayFactory(new() { ["Metrics:MaxPartitionSeries"] = "3" });
        using var client = factory.CreateClient();
        await Http.CreateTopicAsync(client, "few", 2);
        await Http.ProduceAsync(client, "few", """[{"partition":0,"value":1},{"partition":1,"value":2}]""");
        Assert.Contains("gateway_partition_end_offset{topic=\"few\",partition=\"1\"} 1", await client.GetStringAsync("/metrics"), StringComparison.Ordinal);

        await Http.CreateTopicAsync(client, "many", 4);
        await Http.ProduceAsync(client, "many", """[{"partition":3,"value":1},{"partition":3,"value":2}]""");
        string text = await client.GetStringAsync("/metrics");
        Assert.DoesNotContain("gateway_partition_end_offset{", text, StringComparison.Ordinal);
        Assert.DoesNotContain("gateway_partition_size_bytes{", text, StringComparison.Ordinal);
        Assert.Contains("gateway_topic_records{topic=\"few\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("gateway_topic_records{topic=\"many\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("gateway_topic_partitions{topic=\"many\"} 4", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_show_traffic_offsets_latency_and_group_lag_in_prometheus_text()
    {
        await Http.CreateTopicAsync(_client, "measured", 2);
        await Http.ProduceAsync(_client, "measured", """[{"key":"a","value":1},{"key":"a","value":2},{"key":"a","value":3}]""");
        int partition = Gateway.Storage.Partitioner.ForKey("a"u8, 2);
        await Http.GetJsonAsync(_client, $"/v1/topics/measured/partitions/{partition}/records?offset=1");
        var join = await Http.PostProblemlessAsync(_client, "/v1/groups/metered/members", """{"topics":["measured"],"autoOffsetReset":"earliest"}""");
        using (var commit = await _client.PostAsync($"/v1/groups/metered/members/{(string)join["memberId"]!}/offsets", Http.Json($$"""{"generation":{{(long)join["generation"]!}},"offsets":[{"topic":"measured","partition":{{partition}},"offset":1}]}""")))
        {
            Assert.Equal(HttpStatusCode.OK, commit.StatusCode);
        }

        await Http.GetProblemAsync(_client, "/v1/topics/unmeasured", HttpStatusCode.NotFound, "topic_not_found");
        using var response = await _client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        string text = await response.Content.ReadAsStringAsync();
        Assert.Contains("gateway_records_produced_total{topic=\"measured\"} 3", text, StringComparison.Ordinal);
        Assert.Contains("gateway_records_fetched_total{topic=\"measured\"} 2", text, StringComparison.Ordinal);
        Assert.Contains($"gateway_partition_end_offset{{topic=\"measured\",partition=\"{partition}\"}} 3", text, StringComparison.Ordinal);
        Assert.Contains($"gateway_group_lag{{group=\"metered\",topic=\"measured\",partition=\"{partition}\"}} 2", text, StringComparison.Ordinal);
        Assert.Contains("gateway_topic_records{topic=\"measured\"} 3", text, StringComparison.Ordinal);
        Assert.Contains("gateway_topic_partitions{topic=\"measured\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("gateway_group_topic_lag{group=\"metered\",topic=\"measured\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("gateway_request_duration_seconds_count{endpoint=\"Produce\",code=\"200\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("gateway_request_duration_seconds_count{endpoint=\"DescribeTopic\",code=\"404\"} 1", text, StringComparison.Ordinal);
        var commits = System.Text.RegularExpressions.Regex.Match(text, @"^gateway_commit_duration_seconds_count (\d+)", System.Text.RegularExpressions.RegexOptions.Multiline);
        if (GatewayFactory.Backend == "embedded")
        {
            // The kafka backend has no commits of its own: acks=all is the cluster's.
            Assert.True(commits.Success && long.Parse(commits.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 1, "the acks=disk produce waited for at least one timed commit");
        }
        Assert.Contains("gateway_sse_subscribers{kind=\"topic\"} 0", text, StringComparison.Ordinal);

        using (var deleted = await _client.DeleteAsync("/v1/topics/measured"))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        string after = await _client.GetStringAsync("/metrics");
        Assert.DoesNotContain("gateway_partition_end_offset{topic=\"measured\"", after, StringComparison.Ordinal);
        Assert.DoesNotContain("gateway_records_produced_total{topic=\"measured\"}", after, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Operations_answer_health_and_unknown_routes_as_problems()
    {
        using var ready = await _client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        using var live = await _client.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        await Http.GetProblemAsync(_client, "/v1/nothing-here", HttpStatusCode.NotFound, "not_found");
        using var openapi = await _client.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, openapi.StatusCode);
        using var swagger = await _client.GetAsync("/swagger/index.html");
        Assert.Equal(HttpStatusCode.OK, swagger.StatusCode);
        Assert.Contains("swagger-ui", await swagger.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }

    [SkippableFact]
    public async Task A_partition_whose_segment_file_vanished_is_refused_and_readiness_says_why()
    {
        GatewayFactory.RequireEmbedded("segment files");
        using var temp = new TempDirectory("gateway-server-tests", create: false);
        string data = temp.Path;
        await using (var first = new GatewayFactory(dataDirectory: data))
        {
            using var client = first.CreateClient();
            await Http.CreateTopicAsync(client, "fragile", 2);
            await Http.ProduceAsync(client, "fragile", """[{"partition":0,"value":"a"},{"partition":0,"value":"b"},{"partition":1,"value":"c"}]""");
        }
        File.Delete(Path.Combine(data, "topics", "fragile", "0", "data.log.0"));

        await using var second = new GatewayFactory(dataDirectory: data);
        using var reopened = second.CreateClient();
        using (var ready = await reopened.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            string body = await ready.Content.ReadAsStringAsync();
            Assert.Contains("fragile/0", body, StringComparison.Ordinal);
            Assert.True(body.Contains("segment file is missing", StringComparison.Ordinal), body);
        }
        await Http.GetProblemAsync(reopened, "/v1/topics/fragile/partitions/0/records?offset=0", HttpStatusCode.InternalServerError, "log_corrupted");
        using (var produce = await reopened.PostAsync("/v1/topics/fragile/partitions/0/records", Http.Json("""{"records":[{"value":"z"}]}""")))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, produce.StatusCode);
        }
        // The intact partition keeps serving.
        Assert.Single(Http.Records(await Http.GetJsonAsync(reopened, "/v1/topics/fragile/partitions/1/records?offset=0")));
    }
}
