using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Server.Tests.Errors;

/// <summary>
/// Hostile and broken input on every endpoint: each answer is a 4xx problem+json (no 5xx), nothing is created
/// outside the data folder, and the stored data is unchanged afterwards.
/// </summary>
public sealed class HostileInputTests : IAsyncLifetime
{
    private readonly TempDirectory _sandbox = new("gateway-hostile-tests");
    private GatewayFactory _factory = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _factory = new GatewayFactory(new() { ["Limits:MaxRequestBytes"] = "65536" }, dataDirectory: Path.Combine(_sandbox.Path, "data"));
        _client = _factory.CreateClient();
        await Http.CreateTopicAsync(_client, "kept", 2);
        await Http.ProduceAsync(_client, "kept", """[{"key":"a","value":{"n":1}},{"key":"b","value":"two"},{"partition":1,"valueBase64":"AAE="}]""");
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _factory.DisposeAsync();
        _sandbox.Dispose();
    }

    private static readonly string Long250 = new('a', 250);
    private static readonly string DeepJson = new string('[', 100_000) + new string(']', 100_000);

    public static TheoryData<string, string, string, string?, string?> Cases() => new()
    {
        // name, method, path, content type, body
        { "topic named .", "POST", "/v1/topics", "application/json", """{"name":"."}""" },
        { "topic named ..", "POST", "/v1/topics", "application/json", """{"name":".."}""" },
        { "topic named ../x", "POST", "/v1/topics", "application/json", """{"name":"../x"}""" },
        { "topic named /etc/passwd", "POST", "/v1/topics", "application/json", """{"name":"/etc/passwd"}""" },
        { "topic name of 250 characters", "POST", "/v1/topics", "application/json", $$"""{"name":"{{Long250}}"}""" },
        { "topic name with NUL", "POST", "/v1/topics", "application/json", """{"name":"a\u0000b"}""" },
        { "topic name not ASCII", "POST", "/v1/topics", "application/json", """{"name":"caf\u00e9"}""" },
        { "topic name a number", "POST", "/v1/topics", "application/json", """{"name":42}""" },
        { "partitions -1", "POST", "/v1/topics", "application/json", """{"name":"x1","partitions":-1}""" },
        { "partitions 2^31", "POST", "/v1/topics", "application/json", """{"name":"x2","partitions":2147483648}""" },
        { "partitions as a string", "POST", "/v1/topics", "application/json", """{"name":"x3","partitions":"3"}""" },
        { "unknown field", "POST", "/v1/topics", "application/json", """{"name":"x4","partitons":3}""" },
        { "create as text", "POST", "/v1/topics", "text/plain", """{"name":"x5"}""" },
        { "create without body", "POST", "/v1/topics", "application/json", null },
        { "truncated JSON", "POST", "/v1/topics", "application/json", """{"name":"x6" """ },
        { "deeply nested JSON", "POST", "/v1/topics", "application/json", DeepJson },
        { "path topic ..%2Fx", "GET", "/v1/topics/..%2Fx", null, null },
        { "path topic 250 characters", "GET", $"/v1/topics/{Long250}", null, null },
        { "path topic not ASCII", "GET", "/v1/topics/caf%C3%A9/partitions/0/records", null, null },
        { "partition -1", "GET", "/v1/topics/kept/partitions/-1/records", null, null },
        { "partition not a number", "GET", "/v1/topics/kept/partitions/zero/records", null, null },
        { "partition 2^63", "GET", "/v1/topics/kept/partitions/9223372036854775808/records", null, null },
        { "offset -1", "GET", "/v1/topics/kept/partitions/0/records?offset=-1", null, null },
        { "offset 2^63", "GET", "/v1/topics/kept/partitions/0/records?offset=9223372036854775808", null, null },
        { "offset 2^63-1", "GET", "/v1/topics/kept/partitions/0/records?offset=9223372036854775807", null, null },
        { "offset not a number", "GET", "/v1/topics/kept/partitions/0/records?offset=abc", null, null },
        { "limit 0", "GET", "/v1/topics/kept/partitions/0/records?limit=0", null, null },
        { "waitMs -5", "GET", "/v1/topics/kept/partitions/0/records?waitMs=-5", null, null },
        { "timestamp -1", "GET", "/v1/topics/kept/partitions/0/offsets?timestamp=-1", null, null },
        { "delete before 2^63", "DELETE", "/v1/topics/kept/partitions/0/records?before=9223372036854775808", null, null },
        { "delete before -1", "DELETE", "/v1/topics/kept/partitions/0/records?before=-1", null, null },
        { "delete before past the end", "DELETE", "/v1/topics/kept/partitions/0/records?before=1000", null, null },
        { "expectedOffset -1", "POST", "/v1/topics/kept/partitions/0/records?expectedOffset=-1", "application/json", """{"records":[{"value":1}]}""" },
        { "produce malformed JSON", "POST", "/v1/topics/kept/records", "application/json", """{"records":[{"value":1},""" },
        { "produce records not an array", "POST", "/v1/topics/kept/records", "application/json", """{"records":"x"}""" },
        { "produce no records", "POST", "/v1/topics/kept/records", "application/json", """{"records":[]}""" },
        { "produce deeply nested value", "POST", "/v1/topics/kept/records", "application/json", $$"""{"records":[{"value":{{DeepJson}}}]}""" },
        { "produce bad base64", "POST", "/v1/topics/kept/records", "application/json", """{"records":[{"valueBase64":"!!!not base64"}]}""" },
        { "produce key twice", "POST", "/v1/topics/kept/records", "application/json", """{"records":[{"key":"a","keyBase64":"AAE="}]}""" },
        { "produce header not a string", "POST", "/v1/topics/kept/records", "application/json", """{"records":[{"value":1,"headers":{"h":{"x":1}}}]}""" },
        { "produce to partition 99", "POST", "/v1/topics/kept/records", "application/json", """{"records":[{"partition":99,"value":1}]}""" },
        { "produce second record bad: nothing stored", "POST", "/v1/topics/kept/records", "application/json", """{"records":[{"value":"ok"},{"partition":-3,"value":1}]}""" },
        { "produce timestamp negative", "POST", "/v1/topics/kept/records", "application/json", """{"records":[{"value":1,"timestamp":-1}]}""" },
        { "produce acks=maybe", "POST", "/v1/topics/kept/records?acks=maybe", "application/json", """{"records":[{"value":1}]}""" },
        { "produce truncated NDJSON", "POST", "/v1/topics/kept/records", "application/x-ndjson", "{\"value\":1}\n{\"value\":2}\n{\"val" },
        { "produce NDJSON line not an object", "POST", "/v1/topics/kept/records", "application/x-ndjson", "{\"value\":1}\n[1,2]\n" },
        { "produce body over the limit", "POST", "/v1/topics/kept/records", "application/octet-stream", new string('x', 100_000) },
        { "produce JSON over the limit", "POST", "/v1/topics/kept/records", "application/json", "{\"records\":[{\"value\":\"" + new string('x', 100_000) + "\"}]}" },
        { "produce NDJSON over the limit", "POST", "/v1/topics/kept/records", "application/x-ndjson", string.Concat(Enumerable.Repeat("{\"value\":\"" + new string('x', 1000) + "\"}\n", 100)) },
        { "change partitions down", "PATCH", "/v1/topics/kept", "application/json", """{"partitions":1}""" },
        { "change retention 0", "PATCH", "/v1/topics/kept", "application/json", """{"config":{"retentionMs":0}}""" },
        { "change acks unknown", "PATCH", "/v1/topics/kept", "application/json", """{"config":{"acks":"paper"}}""" },
        { "group name ..", "POST", "/v1/groups/../members", "application/json", """{"topics":["kept"]}""" },
        { "group name with %2F", "POST", "/v1/groups/a%2Fb/members", "application/json", """{"topics":["kept"]}""" },
        { "group name 250 characters", "POST", $"/v1/groups/{Long250}/members", "application/json", """{"topics":["kept"]}""" },
        { "join no topics", "POST", "/v1/groups/g/members", "application/json", """{"topics":[]}""" },
        { "join unknown topic", "POST", "/v1/groups/g/members", "application/json", """{"topics":["nope"]}""" },
        { "join session timeout 2^63", "POST", "/v1/groups/g/members", "application/json", """{"topics":["kept"],"sessionTimeoutMs":9223372036854775808}""" },
        { "join as XML", "POST", "/v1/groups/g/members", "application/xml", "<join/>" },
        { "commit unknown member", "POST", "/v1/groups/g/members/nobody/offsets", "application/json", """{"generation":1,"offsets":[{"topic":"kept","partition":0,"offset":1}]}""" },
        { "reset to nonsense", "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"kept","to":"yesterday"}""" },
        { "reset to offset -1", "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"kept","to":{"offset":-1}}""" },
        { "stream from nonsense", "GET", "/v1/topics/kept/events?from=middle", null, null },
        { "stream bad cursor", "GET", "/v1/topics/kept/events?lastEventId=!!!", null, null },
        { "stream bad base64 cursor", "GET", "/v1/topics/kept/events?lastEventId=AAAA", null, null },
        { "group stream no topics", "GET", "/v1/groups/g/events", null, null },
        { "idempotency key not ASCII", "POST", "/v1/topics/kept/records#key=caf\u00e9", "application/json", """{"records":[{"value":1}]}""" },
        { "idempotency key 300 characters", "POST", "/v1/topics/kept/records#key=" + new string('k', 300), "application/json", """{"records":[{"value":1}]}""" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Hostile_input_gets_a_4xx_problem_and_changes_nothing(string name, string method, string path, string? contentType, string? body)
    {
        string before = await SnapshotAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), path.Split('#')[0]);
        if (path.Split('#') is [_, var header])
        {
            request.Headers.TryAddWithoutValidation("Idempotency-Key", header["key=".Length..]);
        }
        if (body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        using var response = await _client.SendAsync(request);
        int status = (int)response.StatusCode;
        Assert.True(status is >= 400 and < 500, $"{name}: {status} {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.False(string.IsNullOrEmpty((string?)System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!["code"]), $"{name}: no code");

        Assert.Equal(before, await SnapshotAsync());
        if (GatewayFactory.Backend == "embedded")
        {
            // Nothing written beside the data folder either (on another backend the snapshot above is the store's state).
            Assert.Equal(["data"], Directory.GetFileSystemEntries(_sandbox.Path).Select(Path.GetFileName));
            Assert.Equal(["kept"], Directory.GetDirectories(Path.Combine(_sandbox.Path, "data", "topics")).Select(Path.GetFileName));
        }
    }

    [Fact]
    public async Task Invalid_UTF8_in_a_JSON_body_is_refused()
    {
        string before = await SnapshotAsync();
        byte[] body = [.. "{\"records\":[{\"value\":\""u8.ToArray(), 0xC3, 0x28, .. "\"}]}"u8.ToArray()];
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");
        using var response = await _client.PostAsync("/v1/topics/kept/records", content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(before, await SnapshotAsync());
    }

    /// <summary>What the store holds: every partition's records and the topic's settings.</summary>
    private async Task<string> SnapshotAsync()
    {
        var text = new StringBuilder();
        text.Append(Http.Raw(await Http.GetJsonAsync(_client, "/v1/topics")));
        for (int partition = 0; partition < 2; partition++)
        {
            text.Append(Http.Raw(await Http.GetJsonAsync(_client, $"/v1/topics/kept/partitions/{partition}/records?offset=0")));
        }
        return text.ToString();
    }
}

/// <summary>What only a raw socket can send: CR/LF inside a header value, and a body that trickles in.</summary>
public sealed class HostileConnectionTests
{
    [Fact]
    public async Task Broken_requests_on_the_wire_are_refused_and_the_server_keeps_serving()
    {
        using var temp = new TempDirectory("gateway-hostile-wire", create: false);
        string data = temp.Path;
        await using var server = await ServerProcess.StartAsync(data, "--Limits:MinRequestBodyBytesPerSecond=5000");
        await Http.CreateTopicAsync(server.Client, "kept");

        // A CR inside a header value: Kestrel refuses the request before any endpoint runs.
        string crlf = await RawAsync(server.Address, "POST /v1/topics/kept/records HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\rb\r\nContent-Length: 2\r\n\r\n{}");
        Assert.StartsWith("HTTP/1.1 400", crlf, StringComparison.Ordinal);
        // A NUL in the path (the in-memory test client cannot even send it).
        string nul = await RawAsync(server.Address, "GET /v1/topics/a%00b/partitions/0/records HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 400", nul, StringComparison.Ordinal);

        // A body that trickles in far below the minimum data rate is cut off after the grace period.
        using (var slow = new TcpClient())
        {
            await slow.ConnectAsync(server.Address.Host, server.Address.Port);
            var stream = slow.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("POST /v1/topics/kept/records HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"));
            var cutOff = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                try
                {
                    for (int i = 0; i < 60; i++)
                    {
                        await stream.WriteAsync("x"u8.ToArray());
                        await Task.Delay(500);
                    }
                }
                catch (IOException)
                {
                    return true; // the server closed the connection
                }
                return false;
            });
            Assert.True(await cutOff, "the slow upload was not cut off");
        }

        using var fetched = await server.Client.GetAsync("/v1/topics/kept/partitions/0/records");
        Assert.Equal(HttpStatusCode.OK, fetched.StatusCode);
        Assert.Empty(Http.Records(await Http.AssertJsonAsync(fetched)));
        Assert.DoesNotContain("log_corrupted", server.Output, StringComparison.Ordinal);
    }

    private static async Task<string> RawAsync(Uri address, string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(address.Host, address.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var buffer = new byte[4096];
        int read = await stream.ReadAsync(buffer);
        return Encoding.ASCII.GetString(buffer, 0, read);
    }
}
