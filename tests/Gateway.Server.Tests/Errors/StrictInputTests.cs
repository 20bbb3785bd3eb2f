using System.Net;
using System.Text;

namespace Gateway.Server.Tests.Errors;

/// <summary>
/// Input the server once guessed at, now refused with the code that says why: lone surrogates in any JSON string of
/// a produce body, reset targets of the wrong type, duplicate fields, two Idempotency-Keys, a query that is not
/// UTF-8, a negative partition in the query, a cursor of another topic. Nothing is appended by any of them.
/// </summary>
public sealed class StrictInputTests : IAsyncLifetime
{
    private readonly GatewayFactory _factory = new();
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _client = _factory.CreateClient();
        await Http.CreateTopicAsync(_client, "t", 2);
        await Http.CreateTopicAsync(_client, "other", 1);
        await Http.ProduceAsync(_client, "other", """[{"value":"o"}]""");
    }

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    public static TheoryData<string, string, string, string, string> Cases() => new()
    {
        // method, path, content type, body, code
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"key":"x\ud800y","value":1}]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":"x\udc00"}]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":{"a":["x\ud800y"]}}]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":{"x\ud800y":1}}]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":1,"headers":{"x\ud800y":"v"}}]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":1,"headers":{"h":"x\ud800y"}}]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":1,"x\ud800y":2}]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/partitions/0/records", "application/json", """{"records":[{"value":"x\ud800y"}]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/x-ndjson", "{\"value\":1}\n{\"value\":\"x\\ud800y\"}\n", "invalid_utf8" },
        { "POST", "/v1/topics/t/partitions/1/records", "application/x-ndjson", "{\"key\":\"\\udfff\",\"value\":1}\n", "invalid_utf8" },
        { "POST", "/v1/topics/t/records?key=%FF%FE", "text/plain", "raw", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/vnd.example+json", """{"a":["x\ud800"]}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/records", "application/vnd.example+json", """{"\udc00":1}""", "invalid_utf8" },
        { "POST", "/v1/topics/t/partitions/0/records", "application/problem+json", "\"\\ud800\"", "invalid_utf8" },
        { "POST", "/v1/topics", "application/json", """{"name":42}""", "invalid_json" },
        { "POST", "/v1/groups/g/members", "application/json", """{"topics":[1]}""", "invalid_json" },
        { "POST", "/v1/topics/t/records?partition=-1", "text/plain", "raw", "invalid_partition" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":1,"value":2}]}""", "invalid_json" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":1,"partition":0,"partition":1}]}""", "invalid_json" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":1}],"records":[{"value":2}]}""", "invalid_json" },
        { "POST", "/v1/topics/t/records", "application/json", """{"records":[{"value":1,"headers":{"h":"a","h":"b"}}]}""", "invalid_json" },
        { "POST", "/v1/topics/t/records", "application/x-ndjson", "{\"value\":1,\"value\":2}\n", "invalid_json" },
        { "POST", "/v1/topics", "application/json", """{"name":"a","name":"b"}""", "invalid_json" },
        { "POST", "/v1/topics", "application/json", """{"name":"x\ud800"}""", "invalid_utf8" },
        { "POST", "/v1/groups/g/members", "application/json", """{"topics":["t"],"topics":["other"]}""", "invalid_json" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"offset":"5"}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"offset":null}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"offset":{}}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"offset":1.5}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"timestamp":"x"}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"timestamp":null}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"timestamp":[1]}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"offset":0,"timestamp":0}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t","to":{"offsets":0}}""", "invalid_reset_target" },
        { "PUT", "/v1/groups/g/offsets", "application/json", """{"topic":"t"}""", "invalid_reset_target" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Refused_with_its_code_and_nothing_appended(string method, string path, string contentType, string body, string code)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        using var response = await _client.SendAsync(request);
        await Http.AssertProblemAsync(response, HttpStatusCode.BadRequest, code);
        await AssertNothingAppendedAsync();
    }

    [Fact]
    public async Task Two_idempotency_keys_are_refused()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/topics/t/records") { Content = Http.Json("""{"records":[{"value":1}]}""") };
        request.Headers.TryAddWithoutValidation("Idempotency-Key", ["first", "second"]);
        using var response = await _client.SendAsync(request);
        await Http.AssertProblemAsync(response, HttpStatusCode.BadRequest, "invalid_idempotency_key");
        await AssertNothingAppendedAsync();
    }

    [Fact]
    public async Task A_cursor_of_another_topic_is_refused_instead_of_replaying_from_zero()
    {
        using var stream = await _client.GetAsync("/v1/topics/other/events?from=earliest", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
        string? id = null;
        while (id is null && await reader.ReadLineAsync() is { } line)
        {
            id = line.StartsWith("id: ", StringComparison.Ordinal) ? line[4..] : null;
        }
        Assert.NotNull(id);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/topics/t/events");
        request.Headers.TryAddWithoutValidation("Last-Event-ID", id);
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await Http.AssertProblemAsync(response, HttpStatusCode.BadRequest, "invalid_cursor");
        await Http.GetProblemAsync(_client, $"/v1/groups/g/events?topics=t&lastEventId={Uri.EscapeDataString(id)}", HttpStatusCode.BadRequest, "invalid_cursor");
    }

    private async Task AssertNothingAppendedAsync()
    {
        var topic = await Http.GetJsonAsync(_client, "/v1/topics/t");
        Assert.All(topic["partitions"]!.AsArray(), p => Assert.Equal(0, (long)p!["endOffset"]!));
        Assert.Equal(["other", "t"], (await Http.GetJsonAsync(_client, "/v1/topics"))["topics"]!.AsArray().Select(t => (string)t!["name"]!));
    }
}
