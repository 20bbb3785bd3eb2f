using System.Net;
using System.Net.Http.Headers;

namespace Gateway.Server.Tests.Observability;

/// <summary>Request logs name the route, topic, status and time, reach the optional file sink, and never carry credentials.</summary>
public sealed class LoggingTests : IAsyncLifetime
{
    private readonly TempDirectory _dataDirectory = new("gateway-logging-tests", create: false);

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        _dataDirectory.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Request_logs_carry_route_topic_status_and_time_but_no_secrets()
    {
        string logFile = Path.Combine(_dataDirectory.Path, "logs", "gateway.log");
        await using var server = await StartLoggingToFileAsync(
            logFile,
            "--Serilog:MinimumLevel:Default=Information",
            "--Serilog:MinimumLevel:Override:Gateway.Server.Requests=Information",
            // ASP.NET's own request log prints the full URL, query string included: the credential must still not appear.
            "--Serilog:MinimumLevel:Override:Microsoft.AspNetCore.Hosting.Diagnostics=Information");
        var client = server.Client;
        await Http.CreateTopicAsync(client, "logged", 1);
        using (var produce = new HttpRequestMessage(HttpMethod.Post, "/v1/topics/logged/records?key=k1") { Content = new StringContent("v") })
        {
            produce.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "header-secret-7f3a");
            using var produced = await client.SendAsync(produce);
            Assert.Equal(HttpStatusCode.OK, produced.StatusCode);
        }
        using (var fetched = await client.GetAsync("/v1/topics/logged/partitions/0/records?offset=0&access_token=query-secret-91bc"))
        {
            Assert.Equal(HttpStatusCode.OK, fetched.StatusCode);
        }
        using (var stream = await client.GetAsync("/v1/topics/logged/events?access_token=stream-secret-5d2e&from=earliest", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
        }
        using (var missing = await client.GetAsync("/v1/topics/absent"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
        await server.StopAsync();

        string console = server.Output;
        Assert.Contains("access_token=[redacted]", console, StringComparison.Ordinal); // the URL was logged, without the credential
        string file = await File.ReadAllTextAsync(logFile);
        foreach (string log in new[] { console, file })
        {
            Assert.Contains("HTTP POST /v1/topics/{topic}/records topic=logged responded 200 in", log, StringComparison.Ordinal);
            Assert.Contains("HTTP GET /v1/topics/{topic}/partitions/{partition}/records topic=logged responded 200 in", log, StringComparison.Ordinal);
            Assert.Contains("HTTP GET /v1/topics/{topic} topic=absent responded 404 in", log, StringComparison.Ordinal);
            Assert.DoesNotContain("header-secret-7f3a", log, StringComparison.Ordinal);
            Assert.DoesNotContain("query-secret-91bc", log, StringComparison.Ordinal);
            Assert.DoesNotContain("stream-secret-5d2e", log, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Client_errors_log_no_error_and_no_stack_trace()
    {
        await using var server = await ServerProcess.StartAsync(_dataDirectory.Path, "--Serilog:MinimumLevel:Default=Information");
        var client = server.Client;
        await Http.CreateTopicAsync(client, "t", 1);
        string[] bodies =
        [
            """{"records":[{"value":"x\ud800y"}]}""",
            """{"records":[{"key":1,"key":2}]}""",
            """{"records":[{"value":1}""",
        ];
        foreach (string body in bodies)
        {
            using var response = await client.PostAsync("/v1/topics/t/records", Http.Json(body));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        using (var response = await client.PostAsync("/v1/topics", Http.Json("""{"name":"x\udc00"}""")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        using (var response = await client.PutAsync("/v1/groups/g/offsets", Http.Json("""{"topic":"t","to":{"offset":"5"}}""")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        using (var response = await client.GetAsync("/v1/topics/t/partitions/0/records?offset=abc"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        await server.StopAsync();
        Assert.DoesNotContain(" ERR]", server.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", server.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_open_no_logging_scope_or_activity_unless_aspnet_request_logs_are_configured()
    {
        string logFile = Path.Combine(_dataDirectory.Path, "logs", "gateway.json");
        await using var server = await StartLoggingToFileAsync(
            logFile,
            "--Serilog:MinimumLevel:Override:Gateway.Server.Requests=Information",
            "--Serilog:WriteTo:1:Args:formatter=Serilog.Formatting.Compact.CompactJsonFormatter, Serilog.Formatting.Compact");
        string traceId;
        using (var missing = await server.Client.GetAsync("/v1/topics/absent"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            traceId = (string)System.Text.Json.Nodes.JsonNode.Parse(await missing.Content.ReadAsStringAsync())!["traceId"]!;
        }
        await server.StopAsync();

        var requestLog = (await File.ReadAllLinesAsync(logFile))
            .Select(line => System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject())
            .Single(e => (string?)e["Route"] == "/v1/topics/{topic}" && (int?)e["StatusCode"] == 404);
        // ASP.NET's hosting started no Activity (Serilog writes its trace id as @tr; the Activity and the request's
        // logging scope come and go together); the request log names the problem's traceId itself.
        Assert.False(requestLog.ContainsKey("@tr"), requestLog.ToJsonString());
        Assert.Equal(traceId, (string?)requestLog["RequestId"]);
        Assert.Equal("Gateway.Server.Requests", (string?)requestLog["SourceContext"]);
        Assert.Equal("/v1/topics/absent", (string?)requestLog["RequestPath"]);
    }

    /// <summary>A server on this test's data whose log also goes to <paramref name="logFile"/> (the second sink), with <paramref name="settings"/>.</summary>
    private Task<ServerProcess> StartLoggingToFileAsync(string logFile, params string[] settings) =>
        ServerProcess.StartAsync(Path.Combine(_dataDirectory.Path, "store"), [.. settings, "--Serilog:WriteTo:1:Name=File", $"--Serilog:WriteTo:1:Args:path={logFile}"]);
}
