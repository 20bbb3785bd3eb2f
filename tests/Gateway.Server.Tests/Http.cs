using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gateway.Server.Tests;

/// <summary>Small helpers for talking to the API the way a client would.</summary>
internal static class Http
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static async Task CreateTopicAsync(HttpClient client, string name, int partitions = 1, string? config = null)
    {
        string body = config is null ? $$"""{"name":"{{name}}","partitions":{{partitions}}}""" : $$"""{"name":"{{name}}","partitions":{{partitions}},"config":{{config}}}""";
        using var response = await client.PostAsync("/v1/topics", Json(body));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    public static async Task<JsonNode> ProduceAsync(HttpClient client, string topic, string recordsJson, string query = "")
    {
        using var response = await client.PostAsync($"/v1/topics/{topic}/records{query}", Json($$"""{"records":{{recordsJson}}}"""));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    public static async Task<JsonNode> GetJsonAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>Asserts a problem+json answer with the status and code, and returns it.</summary>
    public static async Task<JsonNode> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status} {code}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(text)!;
        Assert.Equal(code, (string?)problem["code"]);
        Assert.Equal((int)status, (int?)problem["status"]);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
        return problem;
    }

    public static async Task<JsonNode> PostProblemAsync(HttpClient client, string path, HttpContent content, HttpStatusCode status, string code)
    {
        using var response = await client.PostAsync(path, content);
        return await AssertProblemAsync(response, status, code);
    }

    public static async Task<JsonNode> GetProblemAsync(HttpClient client, string path, HttpStatusCode status, string code)
    {
        using var response = await client.GetAsync(path);
        return await AssertProblemAsync(response, status, code);
    }

    public static async Task<JsonNode> PostProblemlessAsync(HttpClient client, string path, string json)
    {
        using var response = await client.PostAsync(path, Json(json));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    public static async Task<JsonNode> AssertJsonAsync(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

    public static JsonArray Records(JsonNode fetch) => fetch["records"]!.AsArray();

    public static string Raw(JsonNode? node) => node?.ToJsonString(new JsonSerializerOptions { WriteIndented = false }) ?? "null";

    public static Task<HttpResponseMessage> PatchAsync(HttpClient client, string path, string json) =>
        client.PatchAsync(path, Json(json));
}
