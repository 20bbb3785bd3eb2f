using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gateway.Server.Tests.Hosting;

/// <summary>The committed OpenAPI document is the one the code serves; regenerate with UPDATE_OPENAPI=1.</summary>
public sealed class OpenApiDocumentTests : IAsyncLifetime
{
    private readonly GatewayFactory _factory = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task The_committed_document_matches_the_code()
    {
        using var client = _factory.CreateClient();
        string served = await client.GetStringAsync("/openapi/v1.json");
        string normalized = JsonNode.Parse(served)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
        string path = Path.Combine(Repository.Root(), "api-specs", "openapi.json");
        if (Environment.GetEnvironmentVariable("UPDATE_OPENAPI") == "1")
        {
            await File.WriteAllTextAsync(path, normalized);
        }
        Assert.True(File.Exists(path), "api-specs/openapi.json is missing: run UPDATE_OPENAPI=1 dotnet test --filter OpenApiDocumentTests");
        Assert.True(
            (await File.ReadAllTextAsync(path)).ReplaceLineEndings("\n") == normalized,
            "api-specs/openapi.json differs from the document the code serves: run UPDATE_OPENAPI=1 dotnet test --filter OpenApiDocumentTests and commit it");
    }

    [Fact]
    public async Task Every_operation_has_an_id_a_summary_a_description_and_examples()
    {
        using var client = _factory.CreateClient();
        var document = JsonNode.Parse(await client.GetStringAsync("/openapi/v1.json"))!;
        foreach (var (path, item) in document["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                Assert.False(string.IsNullOrEmpty((string?)operation!["operationId"]), $"{method} {path} has no operationId");
                Assert.False(string.IsNullOrEmpty((string?)operation["summary"]), $"{method} {path} has no summary");
                Assert.False(string.IsNullOrEmpty((string?)operation["description"]), $"{method} {path} has no description");
                foreach (var (status, response) in operation["responses"]!.AsObject())
                {
                    foreach (var (mediaType, content) in response!["content"]?.AsObject() ?? [])
                    {
                        Assert.True(content!["example"] is not null, $"{method} {path} {status} {mediaType} has no example");
                        if (mediaType == "application/problem+json")
                        {
                            Assert.False(string.IsNullOrEmpty((string?)content["example"]!["code"]), $"{method} {path} {status}: the problem example has no code");
                        }
                    }
                }
                foreach (var parameter in operation["parameters"]?.AsArray() ?? [])
                {
                    Assert.False(string.IsNullOrEmpty((string?)parameter!["description"]), $"{method} {path}: parameter {parameter["name"]} has no description");
                }
            }
        }
    }

    [Fact]
    public async Task Streams_and_NDJSON_are_documented_with_their_media_types()
    {
        using var client = _factory.CreateClient();
        var paths = JsonNode.Parse(await client.GetStringAsync("/openapi/v1.json"))!["paths"]!;
        Assert.NotNull(paths["/v1/topics/{topic}/events"]!["get"]!["responses"]!["200"]!["content"]!["text/event-stream"]);
        Assert.NotNull(paths["/v1/groups/{group}/events"]!["get"]!["responses"]!["200"]!["content"]!["text/event-stream"]);
        Assert.NotNull(paths["/v1/topics/{topic}/records"]!["post"]!["requestBody"]!["content"]!["application/x-ndjson"]);
        Assert.Contains(
            paths["/v1/topics/{topic}/records"]!["post"]!["parameters"]!.AsArray(),
            p => (string?)p!["name"] == "Idempotency-Key" && (string?)p["in"] == "header");
    }
}
