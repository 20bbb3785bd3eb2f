using System.Net;
using System.Text.Json.Nodes;
using Gateway.Server.Streaming;
using Gateway.Storage;

namespace Gateway.Server.Tests.Streaming;

/// <summary>
/// Streams read from the real server process over Kestrel (the in-memory test server does not hand a streaming
/// response to its client before the response ends), with the framework's spec-following SSE parser; on the suite's
/// backend (<see cref="SuiteBackend"/>).
/// </summary>
public sealed class StreamingApiTests : IAsyncLifetime
{
    private readonly TempDirectory _dataDirectory = new("gateway-streaming-tests", create: false);
    private readonly TempDirectory _slowDataDirectory = new("gateway-streaming-tests", create: false);
    private readonly SuiteBackend _backend = new();
    private ServerProcess _server = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        await StartAsync();
        await Http.CreateTopicAsync(_client, "s", 3);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _backend.DisposeAsync();
        _dataDirectory.Dispose();
        _slowDataDirectory.Dispose();
    }

    private async Task StartAsync()
    {
        _server = await ServerProcess.StartAsync(_dataDirectory.Path, await _backend.SettingsAsync(_dataDirectory.Path, "--Streaming:KeepAliveSeconds=1", "--Streaming:CommitIntervalMs=10"));
        _client = _server.Client;
    }

    private async Task ProduceAsync(int partition, params string[] values)
    {
        string records = "[" + string.Join(",", values.Select(v => $$"""{"value":"{{v}}"}""")) + "]";
        using var response = await _client.PostAsync($"/v1/topics/s/partitions/{partition}/records", Http.Json($$"""{"records":{{records}}}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Metrics_count_the_open_streams_of_each_kind()
    {
        await using (var topicStream = await SseClient.OpenAsync(_client, "/v1/topics/s/events"))
        await using (var groupStream = await SseClient.OpenAsync(_client, "/v1/groups/watchers/events?topics=s"))
        {
            string open = await _client.GetStringAsync("/metrics");
            Assert.Contains("gateway_sse_subscribers{kind=\"topic\"} 1", open, StringComparison.Ordinal);
            Assert.Contains("gateway_sse_subscribers{kind=\"group\"} 1", open, StringComparison.Ordinal);
        }
        // The server sees the disconnects at its next write at the latest (keep-alives every second here).
        string closed = "";
        for (int attempt = 0; attempt < 100; attempt++)
        {
            closed = await _client.GetStringAsync("/metrics");
            if (closed.Contains("gateway_sse_subscribers{kind=\"topic\"} 0", StringComparison.Ordinal)
                && closed.Contains("gateway_sse_subscribers{kind=\"group\"} 0", StringComparison.Ordinal))
            {
                break;
            }
            await Task.Delay(100);
        }
        Assert.Contains("gateway_sse_subscribers{kind=\"topic\"} 0", closed, StringComparison.Ordinal);
        Assert.Contains("gateway_sse_subscribers{kind=\"group\"} 0", closed, StringComparison.Ordinal);
    }

    private static (int Partition, long Offset, string Value) Parse(string data)
    {
        var record = JsonNode.Parse(data)!;
        return ((int)record["partition"]!, (long)record["offset"]!, (string)record["value"]!);
    }

    [Fact]
    public async Task A_topic_stream_sends_stored_then_new_records_with_the_right_headers()
    {
        await ProduceAsync(0, "a", "b");
        await using var stream = await SseClient.OpenAsync(_client, "/v1/topics/s/events?from=earliest");
        Assert.Equal("text/event-stream", stream.Response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-cache", stream.Response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        Assert.Equal((0, 0L, "a"), Parse((await stream.NextAsync()).Data));
        Assert.Equal((0, 1L, "b"), Parse((await stream.NextAsync()).Data));
        Assert.Equal(TimeSpan.FromMilliseconds(3000), stream.Parser.ReconnectionInterval);

        await ProduceAsync(2, "live");
        var live = await stream.NextAsync();
        Assert.Equal((2, 0L, "live"), Parse(live.Data));
        Assert.False(string.IsNullOrEmpty(live.EventId));
    }

    [Fact]
    public async Task A_json_value_with_line_breaks_arrives_whole_and_carries_a_resumable_id()
    {
        // A stored JSON value keeps its line breaks, so its event has several data lines (the other write path).
        await Http.CreateTopicAsync(_client, "lines", 1);
        await Http.ProduceAsync(_client, "lines", "[{\"value\":{\"a\":\r\n1,\n\"b\":[2]}}]");
        await Http.ProduceAsync(_client, "lines", """[{"value":"flat"}]""");
        await using var stream = await SseClient.OpenAsync(_client, "/v1/topics/lines/events?from=earliest");
        var multiLine = await stream.NextAsync();
        var value = JsonNode.Parse(multiLine.Data)!["value"]!;
        Assert.Equal(1, (int)value["a"]!);
        Assert.Equal(2, (int)value["b"]![0]!);
        Assert.True(EventCursor.TryDecode(multiLine.EventId, out var afterFirst));
        Assert.Equal(1, afterFirst[new TopicPartition("lines", 0)]);
        var flat = await stream.NextAsync();
        Assert.True(EventCursor.TryDecode(flat.EventId, out var afterSecond));
        Assert.Equal(2, afterSecond[new TopicPartition("lines", 0)]);
    }

    [Fact]
    public async Task Last_event_id_resumes_exactly_after_the_last_event_received()
    {
        for (int p = 0; p < 3; p++)
        {
            await ProduceAsync(p, $"p{p}-0", $"p{p}-1", $"p{p}-2");
        }
        var received = new List<(int, long, string)>();
        string lastId;
        await using (var first = await SseClient.OpenAsync(_client, "/v1/topics/s/events?from=earliest"))
        {
            for (int i = 0; i < 4; i++)
            {
                var item = await first.NextAsync();
                received.Add(Parse(item.Data));
                lastId = item.EventId!;
            }
            lastId = first.Parser.LastEventId;
        }
        await ProduceAsync(1, "p1-3");
        await using (var second = await SseClient.OpenAsync(_client, "/v1/topics/s/events", lastEventId: lastId))
        {
            for (int i = 0; i < 6; i++)
            {
                received.Add(Parse((await second.NextAsync()).Data));
            }
        }
        Assert.Equal(10, received.Distinct().Count());
        Assert.Equal(10, received.Count);
        foreach (var partition in received.GroupBy(r => r.Item1))
        {
            Assert.Equal(partition.Select(r => r.Item2).Order(), partition.Select(r => r.Item2));
        }
    }

    [Fact]
    public async Task Last_event_id_resumes_across_a_server_restart()
    {
        await ProduceAsync(0, "before-1", "before-2");
        string lastId;
        await using (var stream = await SseClient.OpenAsync(_client, "/v1/topics/s/events?from=earliest&partition=0"))
        {
            await stream.NextAsync();
            lastId = (await stream.NextAsync()).EventId!;
        }
        await _server.StopAsync();
        await _server.DisposeAsync();
        await StartAsync();
        await ProduceAsync(0, "after");
        await using var resumed = await SseClient.OpenAsync(_client, $"/v1/topics/s/events?partition=0&lastEventId={Uri.EscapeDataString(lastId)}");
        Assert.Equal((0, 2L, "after"), Parse((await resumed.NextAsync()).Data));
    }

    [Fact]
    public async Task A_group_stream_hands_partitions_over_when_a_second_subscriber_joins()
    {
        await using var first = await SseClient.OpenAsync(_client, "/v1/groups/readers/events?topics=s&autoOffsetReset=earliest");
        for (int p = 0; p < 3; p++)
        {
            await ProduceAsync(p, $"early-{p}");
        }
        var early = new HashSet<int>();
        for (int i = 0; i < 3; i++)
        {
            early.Add(Parse((await first.NextAsync()).Data).Partition);
        }
        Assert.Equal([0, 1, 2], early.Order());

        await using var second = await SseClient.OpenAsync(_client, "/v1/groups/readers/events?topics=s&autoOffsetReset=earliest");
        // Wait until both hold partitions, then every new record goes to exactly one of them.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            var group = await Http.GetJsonAsync(_client, "/v1/groups/readers");
            var members = group["members"]!.AsArray();
            if (members.Count == 2 && members.All(m => m!["assignments"]!.AsArray().Count > 0) && members.Sum(m => m!["assignments"]!.AsArray().Count) == 3)
            {
                break;
            }
            await Task.Delay(50);
        }
        for (int p = 0; p < 3; p++)
        {
            await ProduceAsync(p, $"late-{p}");
        }
        var firstTask = Collect(first);
        var secondTask = Collect(second);
        var all = (await firstTask).Concat(await secondTask).Where(r => r.Value.StartsWith("late", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, all.Count);
        Assert.Equal(3, all.Select(r => r.Partition).Distinct().Count());
        Assert.NotEmpty(await firstTask);
        Assert.NotEmpty(await secondTask);

        static async Task<List<(int Partition, long Offset, string Value)>> Collect(SseClient stream)
        {
            var got = new List<(int, long, string)>();
            try
            {
                while (true)
                {
                    got.Add(Parse((await stream.NextAsync(timeoutSeconds: 3)).Data));
                }
            }
            catch (TimeoutException)
            {
            }
            return got;
        }
    }

    [Fact]
    public async Task A_group_stream_commits_what_it_sent_and_leaves_on_disconnect()
    {
        await ProduceAsync(1, "x", "y");
        await using (var stream = await SseClient.OpenAsync(_client, "/v1/groups/committers/events?topics=s&autoOffsetReset=earliest"))
        {
            await stream.NextAsync();
            await stream.NextAsync();
        }
        var deadline = DateTime.UtcNow.AddSeconds(20);
        JsonNode group;
        do
        {
            await Task.Delay(50);
            group = await Http.GetJsonAsync(_client, "/v1/groups/committers");
        }
        while (group["members"]!.AsArray().Count > 0 && DateTime.UtcNow < deadline);
        Assert.Empty(group["members"]!.AsArray());
        Assert.Equal(2, (long?)group["offsets"]!.AsArray().Single(o => (int)o!["partition"]! == 1)!["committedOffset"]);
    }

    [Fact]
    public async Task A_subscriber_that_stops_reading_is_disconnected_and_the_others_carry_on()
    {
        await using var server = await ServerProcess.StartAsync(_slowDataDirectory.Path, await _backend.SettingsAsync(_slowDataDirectory.Path, "--Streaming:SendTimeoutMs=1000"));
        await Http.CreateTopicAsync(server.Client, "big", 1);
        string value = new string('v', 10_000);
        for (int request = 0; request < 20; request++)
        {
            string lines = string.Concat(Enumerable.Range(0, 100).Select(_ => $$"""{"value":"{{value}}"}""" + "\n"));
            using var produced = await server.Client.PostAsync("/v1/topics/big/records", new StringContent(lines, System.Text.Encoding.UTF8, "application/x-ndjson"));
            Assert.Equal(HttpStatusCode.OK, produced.StatusCode);
        }

        // A raw socket that asks for 20 MB of events and then reads nothing.
        using var stalled = new System.Net.Sockets.TcpClient();
        await stalled.ConnectAsync(server.Address.Host, server.Address.Port);
        var socket = stalled.GetStream();
        await socket.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GET /v1/topics/big/events?from=earliest HTTP/1.1\r\nHost: {server.Address.Authority}\r\nAccept: text/event-stream\r\n\r\n"));

        // Meanwhile a subscriber that reads keeps getting everything.
        await using (var reader = await SseClient.OpenAsync(server.Client, "/v1/topics/big/events?from=1990"))
        {
            for (int i = 0; i < 10; i++)
            {
                await reader.NextAsync();
            }
        }
        await Task.Delay(4000);

        // The stalled one was cut off: reading now ends well before 20 MB.
        long total = 0;
        var buffer = new byte[1 << 16];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            int read;
            while ((read = await socket.ReadAsync(buffer, timeout.Token)) > 0)
            {
                total += read;
            }
        }
        catch (IOException)
        {
        }
        Assert.False(timeout.IsCancellationRequested, "the stalled connection was never closed");
        Assert.InRange(total, 1, 15_000_000);
    }

    [Fact]
    public async Task Idle_streams_get_keep_alive_comments()
    {
        using var response = await _client.GetAsync("/v1/topics/s/events", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        string? line;
        do
        {
            line = await reader.ReadLineAsync(timeout.Token);
        }
        while (line is not null && !line.StartsWith(": keep-alive", StringComparison.Ordinal));
        Assert.Equal(": keep-alive", line);
    }

    [Fact]
    public async Task A_position_removed_by_deletion_is_announced_and_the_stream_ends_with_the_topic()
    {
        await ProduceAsync(0, "gone-1", "gone-2", "kept");
        using (var deleted = await _client.DeleteAsync("/v1/topics/s/partitions/0/records?before=2"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        await using var stream = await SseClient.OpenAsync(_client, "/v1/topics/s/events?from=0&partition=0");
        var reset = JsonNode.Parse((await stream.NextAsync("reset")).Data)!;
        Assert.Equal(0, (long?)reset["offset"]);
        Assert.Equal(2, (long?)reset["resetTo"]);
        Assert.Equal((0, 2L, "kept"), Parse((await stream.NextAsync()).Data));

        using (var dropped = await _client.DeleteAsync("/v1/topics/s"))
        {
            Assert.Equal(HttpStatusCode.NoContent, dropped.StatusCode);
        }
        Assert.True(await stream.EndsAsync());
    }

    [Fact]
    public async Task Problems_before_the_stream_starts_are_problem_json()
    {
        await Http.GetProblemAsync(_client, "/v1/topics/nope/events", HttpStatusCode.NotFound, "topic_not_found");
        await Http.GetProblemAsync(_client, "/v1/topics/s/events?partition=7", HttpStatusCode.NotFound, "partition_not_found");
        await Http.GetProblemAsync(_client, "/v1/topics/s/events?from=soon", HttpStatusCode.BadRequest, "invalid_parameter");
        await Http.GetProblemAsync(_client, "/v1/topics/s/events?lastEventId=garbage!", HttpStatusCode.BadRequest, "invalid_cursor");
        await Http.GetProblemAsync(_client, "/v1/groups/g/events", HttpStatusCode.BadRequest, "missing_parameter");
        await Http.GetProblemAsync(_client, "/v1/groups/g/events?topics=nope", HttpStatusCode.NotFound, "topic_not_found");
    }

    [Fact]
    public async Task The_page_at_the_root_watches_topics_with_event_source()
    {
        using var response = await _client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        string html = await response.Content.ReadAsStringAsync();
        Assert.Contains("new EventSource(", html, StringComparison.Ordinal);
    }
}
