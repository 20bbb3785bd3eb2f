using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Gateway.Storage;

namespace Gateway.Server.Tests.Records;

public sealed class RecordsApiTests : IAsyncLifetime
{
    private readonly GatewayFactory _factory = new();
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _client = _factory.CreateClient();
        await Http.CreateTopicAsync(_client, "t", 4);
        await Http.CreateTopicAsync(_client, "one", 1);
    }

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    private async Task<long> EndOffsetAsync(string topic, int partition) =>
        (long)(await Http.GetJsonAsync(_client, $"/v1/topics/{topic}/partitions/{partition}/offsets"))["endOffset"]!;

    private async Task<long> SharedFetchesAsync()
    {
        string metrics = await _client.GetStringAsync("/metrics");
        var match = System.Text.RegularExpressions.Regex.Match(metrics, @"^gateway_fetches_shared_total (\d+)", System.Text.RegularExpressions.RegexOptions.Multiline);
        return match.Success ? long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    [Fact]
    public async Task A_shared_answer_larger_than_its_write_chunks_is_the_same_bytes_as_the_log_s()
    {
        // 60 records of ~5 KB: the shared answer is copied into the response in 32 KB spans, so records straddle them.
        await Http.CreateTopicAsync(_client, "wide", 1);
        for (int i = 0; i < 6; i++)
        {
            string records = string.Join(",", Enumerable.Range(0, 10).Select(r => $$"""{"key":"k{{i}}-{{r}}","value":"{{new string((char)('a' + r), 5000 + (i * 37) + r)}}"}"""));
            await Http.ProduceAsync(_client, "wide", $"[{records}]");
        }
        const string path = "/v1/topics/wide/partitions/0/records?offset=0&limit=60";
        string fromLog = await _client.GetStringAsync(path);
        long before = await SharedFetchesAsync();
        string shared = await _client.GetStringAsync(path);
        Assert.Equal(before + 1, await SharedFetchesAsync());
        Assert.True(shared.Length > 300_000, $"{shared.Length} bytes");
        Assert.Equal(fromLog, shared);
        Assert.Equal(60, Http.Records(JsonNode.Parse(shared)!).Count);
    }

    [Fact]
    public async Task A_second_fetch_of_the_tail_comes_from_the_shared_ring_with_the_same_bytes_and_limits()
    {
        await Http.CreateTopicAsync(_client, "tail", 1);
        await Http.ProduceAsync(_client, "tail", """
            [
              {"key":"k1","value":"text with \"quotes\" and é","headers":{"h":"v","n":null}},
              {"value":{"nested":[1,2,{"x":null}]}},
              {"valueBase64":"AAECAwQ="},
              {"key":null,"value":null}
            ]
            """);
        for (int i = 0; i < 6; i++)
        {
            await Http.ProduceAsync(_client, "tail", $$"""[{"value":"plain-{{i}}"}]""");
        }
        var paths = new[]
        {
            "/v1/topics/tail/partitions/0/records?offset=0",
            "/v1/topics/tail/partitions/0/records?offset=2&limit=3",
            "/v1/topics/tail/partitions/0/records?offset=1&maxBytes=1",
            "/v1/topics/tail/partitions/0/records?offset=5&maxBytes=60",
            "/v1/topics/tail/partitions/0/records?offset=9",
        };
        var first = new List<string>();
        foreach (string path in paths)
        {
            using var response = await _client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            first.Add(await response.Content.ReadAsStringAsync());
        }
        long before = await SharedFetchesAsync();
        for (int i = 0; i < paths.Length; i++)
        {
            using var response = await _client.GetAsync(paths[i]);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
            Assert.Equal(first[i], await response.Content.ReadAsStringAsync());
        }
        Assert.Equal(before + paths.Length, await SharedFetchesAsync());

        var limited = JsonNode.Parse(first[1])!;
        Assert.Equal([2L, 3L, 4L], Http.Records(limited).Select(r => (long)r!["offset"]!));
        Assert.Equal(5, (long)limited["nextOffset"]!);
        Assert.Single(Http.Records(JsonNode.Parse(first[2])!));
        Assert.Equal(10, (long)JsonNode.Parse(first[4])!["endOffset"]!);

        // Past the tail, after a deletion of records and for a partition the ring never saw: the log answers.
        using (var deleted = await _client.DeleteAsync("/v1/topics/tail/partitions/0/records?before=3"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        await Http.GetProblemAsync(_client, "/v1/topics/tail/partitions/0/records?offset=2", HttpStatusCode.RequestedRangeNotSatisfiable, "offset_out_of_range");
        var afterDelete = await Http.GetJsonAsync(_client, "/v1/topics/tail/partitions/0/records?offset=3");
        Assert.Equal(3, (long)afterDelete["beginOffset"]!);
        Assert.Equal(7, Http.Records(afterDelete).Count);
    }

    [Fact]
    public async Task An_explicit_null_counts_as_a_field_left_out()
    {
        await Http.ProduceAsync(_client, "one", """
            [
              {"key":"a","keyBase64":null,"value":1,"valueBase64":null},
              {"key":null,"keyBase64":"AAE=","value":null,"valueBase64":"AQ=="}
            ]
            """);
        var records = Http.Records(await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?offset=0"));
        Assert.Equal("a", (string?)records[0]!["key"]);
        Assert.Equal(1, (int?)records[0]!["value"]);
        Assert.Equal("AAE=", (string?)records[1]!["keyBase64"]);
        Assert.Equal("AQ==", (string?)records[1]!["valueBase64"]);
    }

    [Fact]
    public async Task Json_records_come_back_byte_for_byte_in_their_format()
    {
        var produced = await Http.ProduceAsync(_client, "one", """
            [
              {"key":"user-1","value":{"any":  "json", "n": [1, 2.50]},"headers":{"trace":"abc","none":null},"timestamp":1764064800123},
              {"value":"plain text \u00e9\n"},
              {"keyBase64":"AP8=","valueBase64":"AAECAwQ="},
              {"key":42,"value":true},
              {"key":"tombstone"}
            ]
            """);
        Assert.Equal([0L, 1, 2, 3, 4], produced["offsets"]!.AsArray().Select(o => (long)o!["offset"]!));

        var records = Http.Records(await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?offset=0"));
        Assert.Equal(5, records.Count);

        Assert.Equal("one", (string?)records[0]!["topic"]);
        Assert.Equal(0, (int?)records[0]!["partition"]);
        Assert.Equal(1764064800123, (long?)records[0]!["timestamp"]);
        Assert.Equal("user-1", (string?)records[0]!["key"]);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"any":"json","n":[1,2.50]}"""), records[0]!["value"]));
        Assert.Equal("abc", (string?)records[0]!["headers"]!["trace"]);
        Assert.True(records[0]!["headers"]!.AsObject().ContainsKey("none"));
        Assert.Null(records[0]!["headers"]!["none"]);

        Assert.Equal("plain text é\n", (string?)records[1]!["value"]);
        Assert.Null(records[1]!["key"]);
        Assert.False(records[1]!.AsObject().ContainsKey("headers"));

        Assert.Equal("AP8=", (string?)records[2]!["keyBase64"]);
        Assert.Equal("AAECAwQ=", (string?)records[2]!["valueBase64"]);

        Assert.Equal(42, (int?)records[3]!["key"]);
        Assert.True((bool?)records[3]!["value"]);

        Assert.True(records[4]!.AsObject().ContainsKey("value"));
        Assert.Null(records[4]!["value"]);
    }

    [Fact]
    public async Task A_json_value_is_stored_as_the_exact_bytes_sent()
    {
        await Http.ProduceAsync(_client, "one", """[{"value":{"b" : 1 ,"a":[ true ]}}]""");
        using var response = await _client.GetAsync("/v1/topics/one/partitions/0/records");
        string text = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"value\":{\"b\" : 1 ,\"a\":[ true ]}", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keys_go_to_kafkas_partition_and_offsets_answer_in_request_order()
    {
        string[] keys = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
        string records = "[" + string.Join(",", keys.Select(k => $$"""{"key":"{{k}}","value":"{{k}}"}""")) + "]";
        var produced = (await Http.ProduceAsync(_client, "t", records))["offsets"]!.AsArray();
        for (int i = 0; i < keys.Length; i++)
        {
            int expected = Partitioner.ForKey(Encoding.UTF8.GetBytes(keys[i]), 4);
            Assert.Equal(expected, (int)produced[i]!["partition"]!);
            var fetched = Http.Records(await Http.GetJsonAsync(_client, $"/v1/topics/t/partitions/{expected}/records?offset={(long)produced[i]!["offset"]!}&limit=1"));
            Assert.Equal(keys[i], (string?)fetched.Single()!["value"]);
        }
    }

    [Fact]
    public async Task Keyless_records_of_one_request_share_a_partition_and_requests_take_turns()
    {
        var partitions = new HashSet<int>();
        for (int i = 0; i < 8; i++)
        {
            var offsets = (await Http.ProduceAsync(_client, "t", """[{"value":1},{"value":2},{"value":3}]"""))["offsets"]!.AsArray();
            Assert.Single(offsets.Select(o => (int)o!["partition"]!).Distinct());
            partitions.Add((int)offsets[0]!["partition"]!);
        }
        Assert.Equal(4, partitions.Count);
    }

    [Fact]
    public async Task Ndjson_streams_one_record_per_line()
    {
        var body = new StringContent("{\"value\":1}\r\n\n{\"key\":\"k\",\"value\":[2]}\n{\"valueBase64\":\"AQ==\"}", Encoding.UTF8, "application/x-ndjson");
        using var response = await _client.PostAsync("/v1/topics/one/records", body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var records = Http.Records(await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records"));
        Assert.Equal(["1", "[2]", "null"], records.Select(r => Http.Raw(r!["value"])));
        Assert.Equal("AQ==", (string?)records[2]!["valueBase64"]);
    }

    [Fact]
    public async Task A_large_ndjson_request_is_appended_whole()
    {
        var lines = new StringBuilder();
        for (int i = 0; i < 2000; i++)
        {
            lines.Append("{\"key\":\"k").Append(i).Append("\",\"value\":{\"n\":").Append(i).Append(",\"pad\":\"").Append('x', 200).Append("\"}}\n");
        }
        using var response = await _client.PostAsync("/v1/topics/one/partitions/0/records", new StringContent(lines.ToString(), Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2000, await EndOffsetAsync("one", 0));
        var fetched = await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?offset=1500&limit=10000&maxBytes=16000000");
        Assert.Equal(500, Http.Records(fetched).Count);
        Assert.Equal(1500, (int?)Http.Records(fetched)[0]!["value"]!["n"]);
        Assert.Equal(2000, (long?)fetched["nextOffset"]);
    }

    [Fact]
    public async Task Records_that_encode_larger_than_their_body_and_spread_over_partitions_land_whole()
    {
        // The first batch starts as large as the declared body: 300 empty records ("{}", tombstones) encode to more
        // bytes than their JSON, and keyed records of one request go to four partitions' batches.
        using (var tombstones = await _client.PostAsync("/v1/topics/one/records", Http.Json($$"""{"records":[{{string.Join(",", Enumerable.Repeat("{}", 300))}}]}""")))
        {
            Assert.Equal(HttpStatusCode.OK, tombstones.StatusCode);
            Assert.True(tombstones.RequestMessage!.Content!.Headers.ContentLength < 300 * 8);
        }
        var fetched = Http.Records(await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?limit=1000"));
        Assert.Equal(300, fetched.Count);
        Assert.All(fetched, r => Assert.Null(r!["value"]));

        string keyed = string.Join(",", Enumerable.Range(0, 200).Select(i => $$"""{"key":"k{{i}}","value":"{{new string('v', 300 + i)}}"}"""));
        var answer = await Http.ProduceAsync(_client, "t", $"[{keyed}]");
        var positions = answer["offsets"]!.AsArray();
        Assert.Equal(4, positions.Select(p => (int)p!["partition"]!).Distinct().Count());
        for (int i = 0; i < 200; i += 37)
        {
            var record = Http.Records(await Http.GetJsonAsync(_client, $"/v1/topics/t/partitions/{positions[i]!["partition"]}/records?offset={positions[i]!["offset"]}&limit=1"))[0]!;
            Assert.Equal($"k{i}", (string?)record["key"]);
            Assert.Equal(new string('v', 300 + i), (string?)record["value"]);
        }
    }

    [Fact]
    public async Task A_small_body_after_a_large_one_carries_only_its_own_bytes()
    {
        // Bodies are read into pooled buffers: a small one may land in the array a large one used before it.
        await Http.CreateTopicAsync(_client, "reuse", 1);
        for (int i = 0; i < 5; i++)
        {
            string large = string.Join(",", Enumerable.Range(0, 40).Select(_ => $$"""{"value":"{{new string('L', 4000)}}"}"""));
            await Http.ProduceAsync(_client, "reuse", $"[{large}]");
            await Http.ProduceAsync(_client, "reuse", $$"""[{"value":"small-{{i}}"}]""");
            using var raw = await _client.PostAsync("/v1/topics/reuse/records", new StringContent($"raw-{i}", Encoding.UTF8, "text/plain"));
            Assert.Equal(HttpStatusCode.OK, raw.StatusCode);
        }
        var records = Http.Records(await Http.GetJsonAsync(_client, "/v1/topics/reuse/partitions/0/records?limit=1000&maxBytes=16777216"));
        Assert.Equal(5 * 42, records.Count);
        for (int i = 0; i < 5; i++)
        {
            Assert.All(Enumerable.Range(i * 42, 40), r => Assert.Equal(new string('L', 4000), (string?)records[r]!["value"]));
            Assert.Equal($"small-{i}", (string?)records[(i * 42) + 40]!["value"]);
            Assert.Equal($"raw-{i}", (string?)records[(i * 42) + 41]!["value"]);
        }
    }

    [Fact]
    public async Task A_raw_body_is_one_record_with_the_key_from_the_query()
    {
        using (var text = await _client.PostAsync("/v1/topics/one/records?key=user-7", new StringContent("hello", Encoding.UTF8, "text/plain")))
        {
            Assert.Equal(HttpStatusCode.OK, text.StatusCode);
        }
        var binary = new ByteArrayContent([0, 1, 2, 255]);
        binary.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using (var response = await _client.PostAsync("/v1/topics/one/records", binary))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        using (var json = await _client.PostAsync("/v1/topics/one/records", new StringContent("""{"type":"order.created"}""", Encoding.UTF8, "application/cloudevents+json")))
        {
            Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        }
        using (var form = await _client.PostAsync("/v1/topics/one/records", new StringContent("curl -d data", Encoding.UTF8, "application/x-www-form-urlencoded")))
        {
            Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        }
        var records = Http.Records(await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records"));
        Assert.Equal("user-7", (string?)records[0]!["key"]);
        Assert.Equal("hello", (string?)records[0]!["value"]);
        Assert.Equal("AAEC/w==", (string?)records[1]!["valueBase64"]);
        Assert.Equal("order.created", (string?)records[2]!["value"]!["type"]);
        Assert.Equal("curl -d data", (string?)records[3]!["value"]);
    }

    public static TheoryData<string, string, HttpStatusCode, string> BadProduceBodies => new()
    {
        { "application/json", """{"records":[{"value":1},{"valueBase64":"not base64!"}]}""", HttpStatusCode.BadRequest, "invalid_base64" },
        { "application/json", """{"records":[{"value":1,"valueBase64":"AA=="}]}""", HttpStatusCode.BadRequest, "invalid_record" },
        { "application/json", """{"records":[{"value":1},{"vaule":2}]}""", HttpStatusCode.BadRequest, "invalid_record" },
        { "application/json", """{"records":[{"value":1},{"value":2""", HttpStatusCode.BadRequest, "invalid_json" },
        { "application/json", """{"records":[{"value":1}]} trailing""", HttpStatusCode.BadRequest, "invalid_json" },
        { "application/json", """{"records":[]}""", HttpStatusCode.BadRequest, "no_records" },
        { "application/json", """{"rec":[]}""", HttpStatusCode.BadRequest, "invalid_request" },
        { "application/json", """[{"value":1}]""", HttpStatusCode.BadRequest, "invalid_request" },
        { "application/json", """{"records":[1]}""", HttpStatusCode.BadRequest, "invalid_record" },
        { "application/json", """{"records":[{"value":1},{"partition":9,"value":2}]}""", HttpStatusCode.NotFound, "partition_not_found" },
        { "application/json", """{"records":[{"partition":-1}]}""", HttpStatusCode.BadRequest, "invalid_partition" },
        { "application/json", """{"records":[{"timestamp":-5}]}""", HttpStatusCode.BadRequest, "invalid_timestamp" },
        { "application/json", """{"records":[{"timestamp":"now"}]}""", HttpStatusCode.BadRequest, "invalid_timestamp" },
        { "application/json", """{"records":[{"headers":{"a":1}}]}""", HttpStatusCode.BadRequest, "invalid_headers" },
        { "application/json", """{"records":[{"headers":["a"]}]}""", HttpStatusCode.BadRequest, "invalid_headers" },
        { "application/json", "{\"records\":[{\"value\":" + new string('[', 100) + new string(']', 100) + "}]}", HttpStatusCode.BadRequest, "invalid_json" },
        { "application/x-ndjson", "{\"value\":1}\n{\"value\":", HttpStatusCode.BadRequest, "invalid_json" },
        { "application/x-ndjson", "{\"value\":1}\n[1]\n", HttpStatusCode.BadRequest, "invalid_record" },
        { "application/x-ndjson", "{\"value\":1} {\"value\":2}\n", HttpStatusCode.BadRequest, "invalid_json" },
        { "application/vnd.x+json", "{not json", HttpStatusCode.BadRequest, "invalid_json" },
    };

    [Theory]
    [MemberData(nameof(BadProduceBodies))]
    public async Task Bad_produce_requests_are_refused_and_append_nothing(string contentType, string body, HttpStatusCode status, string code)
    {
        await Http.PostProblemAsync(_client, "/v1/topics/one/records", new StringContent(body, Encoding.UTF8, contentType), status, code);
        Assert.Equal(0, await EndOffsetAsync("one", 0));
    }

    [Fact]
    public async Task Invalid_utf8_is_refused()
    {
        byte[] body = [.. "{\"records\":[{\"value\":\""u8, 0xC3, 0x28, .. "\"}]}"u8];
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        await Http.PostProblemAsync(_client, "/v1/topics/one/records", content, HttpStatusCode.BadRequest, "invalid_utf8");
        var text = new ByteArrayContent([0x68, 0xFF, 0x69]);
        text.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        await Http.PostProblemAsync(_client, "/v1/topics/one/records", text, HttpStatusCode.BadRequest, "invalid_utf8");
        Assert.Equal(0, await EndOffsetAsync("one", 0));
    }

    [Fact]
    public async Task Records_over_the_topics_size_limit_are_refused()
    {
        await Http.CreateTopicAsync(_client, "small", 1, """{"maxRecordBytes":100}""");
        await Http.PostProblemAsync(_client, "/v1/topics/small/records", Http.Json($$"""{"records":[{"value":"ok"},{"value":"{{new string('x', 200)}}"}]}"""), HttpStatusCode.RequestEntityTooLarge, "record_too_large");
        await Http.PostProblemAsync(_client, "/v1/topics/small/records", new StringContent(new string('x', 200), Encoding.UTF8, "text/plain"), HttpStatusCode.RequestEntityTooLarge, "record_too_large");
        Assert.Equal(0, await EndOffsetAsync("small", 0));
    }

    [Fact]
    public async Task A_body_over_the_request_limit_is_refused()
    {
        await using var factory = new GatewayFactory(new() { ["Limits:MaxRequestBytes"] = "4096" });
        using var client = factory.CreateClient();
        await Http.CreateTopicAsync(client, "limited");
        string big = $$"""{"records":[{"value":"{{new string('x', 10_000)}}"}]}""";
        await Http.PostProblemAsync(client, "/v1/topics/limited/records", Http.Json(big), HttpStatusCode.RequestEntityTooLarge, "request_too_large");
        var ndjson = new StringContent(string.Concat(Enumerable.Repeat("{\"value\":\"0123456789\"}\n", 400)), Encoding.UTF8, "application/x-ndjson");
        await Http.PostProblemAsync(client, "/v1/topics/limited/records", ndjson, HttpStatusCode.RequestEntityTooLarge, "request_too_large");
        Assert.Equal(0, (long)(await Http.GetJsonAsync(client, "/v1/topics/limited/partitions/0/offsets"))["endOffset"]!);
    }

    [Fact]
    public async Task Other_bad_parameters_get_clear_codes()
    {
        await Http.PostProblemAsync(_client, "/v1/topics/nope/records", Http.Json("""{"records":[{"value":1}]}"""), HttpStatusCode.NotFound, "topic_not_found");
        await Http.PostProblemAsync(_client, "/v1/topics/one/records?acks=sometimes", Http.Json("""{"records":[{"value":1}]}"""), HttpStatusCode.BadRequest, "invalid_acks");
        await Http.PostProblemAsync(_client, "/v1/topics/one/partitions/5/records", Http.Json("""{"records":[{"value":1}]}"""), HttpStatusCode.NotFound, "partition_not_found");
        await Http.PostProblemAsync(_client, "/v1/topics/one/partitions/0/records", Http.Json("""{"records":[{"partition":1,"value":1}]}"""), HttpStatusCode.BadRequest, "partition_conflict");
        await Http.PostProblemAsync(_client, "/v1/topics/one/partitions/x/records", Http.Json("""{"records":[{"value":1}]}"""), HttpStatusCode.BadRequest, "invalid_partition");
        await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/0/records?offset=abc", HttpStatusCode.BadRequest, "invalid_parameter");
        await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/0/records?offset=9223372036854775808", HttpStatusCode.BadRequest, "invalid_parameter");
        await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/0/records?offset=-1", HttpStatusCode.RequestedRangeNotSatisfiable, "offset_out_of_range");
        await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/0/records?limit=0", HttpStatusCode.BadRequest, "invalid_parameter");
        await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/0/records?maxBytes=999999999", HttpStatusCode.BadRequest, "invalid_parameter");
        await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/0/records?waitMs=99999999", HttpStatusCode.BadRequest, "invalid_parameter");
        await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/0/records?offset=0&timestamp=5", HttpStatusCode.BadRequest, "invalid_parameter");
        await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/9/records", HttpStatusCode.NotFound, "partition_not_found");
    }

    [Fact]
    public async Task Fetch_past_the_end_is_out_of_range_with_both_bounds()
    {
        await Http.ProduceAsync(_client, "one", """[{"value":1},{"value":2}]""");
        var problem = await Http.GetProblemAsync(_client, "/v1/topics/one/partitions/0/records?offset=3", HttpStatusCode.RequestedRangeNotSatisfiable, "offset_out_of_range");
        Assert.Equal(0, (long?)problem["beginOffset"]);
        Assert.Equal(2, (long?)problem["endOffset"]);
        var atEnd = await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?offset=2");
        Assert.Empty(Http.Records(atEnd));
        Assert.Equal(2, (long?)atEnd["nextOffset"]);
    }

    [Fact]
    public async Task Fetch_honours_limit_max_bytes_and_timestamp()
    {
        await Http.ProduceAsync(_client, "one", """[{"value":"a","timestamp":10},{"value":"b","timestamp":20},{"value":"c","timestamp":30},{"value":"d","timestamp":40}]""");
        var limited = await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?offset=1&limit=2");
        Assert.Equal(["b", "c"], Http.Records(limited).Select(r => (string?)r!["value"]));
        Assert.Equal(3, (long?)limited["nextOffset"]);
        var tiny = await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?maxBytes=1");
        Assert.Single(Http.Records(tiny));
        var fromTime = await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?timestamp=25");
        Assert.Equal(["c", "d"], Http.Records(fromTime).Select(r => (string?)r!["value"]));
    }

    [Fact]
    public async Task A_long_poll_answers_as_soon_as_a_record_is_committed()
    {
        var poll = _client.GetAsync("/v1/topics/one/partitions/0/records?offset=0&waitMs=30000");
        await Task.Delay(300);
        Assert.False(poll.IsCompleted);
        await Http.ProduceAsync(_client, "one", """[{"value":"wake up"}]""");
        // Had the poll waited out its 30 s, it would have answered empty: the record in the answer shows it woke for it.
        using var response = await poll.WaitAsync(TimeSpan.FromSeconds(25));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var records = Http.Records(JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
        Assert.Equal("wake up", (string?)records.Single()!["value"]);
    }

    [Fact]
    public async Task A_long_poll_with_nothing_new_answers_empty_at_wait_ms()
    {
        var empty = await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?offset=0&waitMs=200");
        Assert.Empty(Http.Records(empty));
        Assert.Equal(0, (long?)empty["nextOffset"]);
    }

    [Fact]
    public async Task A_long_poll_on_a_deleted_topic_answers_not_found()
    {
        await Http.CreateTopicAsync(_client, "doomed");
        var poll = _client.GetAsync("/v1/topics/doomed/partitions/0/records?offset=0&waitMs=30000");
        await Task.Delay(300);
        using (var deleted = await _client.DeleteAsync("/v1/topics/doomed"))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        using var response = await poll.WaitAsync(TimeSpan.FromSeconds(20));
        await Http.AssertProblemAsync(response, HttpStatusCode.NotFound, "topic_not_found");
    }

    [Fact]
    public async Task Memory_acks_become_visible_after_the_background_flush()
    {
        var produced = await Http.ProduceAsync(_client, "one", """[{"value":"fast"}]""", "?acks=memory");
        Assert.Equal(0, (long?)produced["offsets"]![0]!["offset"]);
        var fetched = await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records?offset=0&waitMs=10000");
        Assert.Equal("fast", (string?)Http.Records(fetched).Single()!["value"]);
    }

    [SkippableFact]
    public async Task A_conditional_append_lets_exactly_one_of_two_writers_win()
    {
        _factory.Require(StorageCapabilities.ConditionalAppend);
        await Http.ProduceAsync(_client, "one", """[{"value":"first"}]""");
        var attempts = await Task.WhenAll(Enumerable.Range(0, 2).Select(i =>
            _client.PostAsync("/v1/topics/one/partitions/0/records?expectedOffset=1", Http.Json($$"""{"records":[{"value":"writer {{i}}"}]}"""))));
        Assert.Single(attempts, r => r.StatusCode == HttpStatusCode.OK);
        var loser = Assert.Single(attempts, r => r.StatusCode == HttpStatusCode.PreconditionFailed);
        var problem = await Http.AssertProblemAsync(loser, HttpStatusCode.PreconditionFailed, "offset_mismatch");
        Assert.Equal(2, (long?)problem["endOffset"]);
        Assert.Equal(2, await EndOffsetAsync("one", 0));
    }

    [Fact]
    public async Task Concurrent_durable_producers_each_get_their_own_offset()
    {
        var tasks = Enumerable.Range(0, 64).Select(i => Http.ProduceAsync(_client, "one", $$"""[{"value":"p{{i}}"}]"""));
        var answers = await Task.WhenAll(tasks);
        var offsets = answers.Select(a => (long)a["offsets"]![0]!["offset"]!).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 64).Select(i => (long)i), offsets);
        var stored = Http.Records(await Http.GetJsonAsync(_client, "/v1/topics/one/partitions/0/records"));
        Assert.Equal(64, stored.Select(r => (string?)r!["value"]).Distinct().Count());
    }
}
