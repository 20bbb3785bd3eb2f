using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Gateway.Server.Security;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Server.Tests.Security;

/// <summary>
/// The authorization matrix generated, not listed: every <c>/v1</c> endpoint the server maps (read from its routing,
/// so the next endpoint is in it without touching this test) × every principal × every resource, each expected
/// answer computed from the configured rules by an evaluator of this test's own. An endpoint must declare what it
/// needs; a call the rules grant is never 401/403, one they do not is always 403 (401 without credentials).
/// Checks that handlers make on names in a body (create, join, reset) are covered by <see cref="SecurityTests"/>.
/// </summary>
public sealed class AccessMatrixTests : IAsyncLifetime
{
    private static readonly (string Principals, string Topics, string Groups, string Operations)[] Rules =
    [
        ("admin", "*", "*", "*"),
        ("alice", "orders*", "", "produce,fetch"),
        ("alice", "", "alice-*", "consume"),
        ("bob", "orders", "", "fetch"),
        ("bob", "", "bob-*", "consume,admin"),
        ("carol", "logs.*", "", "produce,admin"),
        ("alice,bob", "", "shared-*", "consume"),
    ];

    private static readonly string[] Principals = ["admin", "alice", "bob", "carol"];
    private static readonly string[] Topics = ["orders", "orders-eu", "secret", "logs.app"];
    private static readonly string[] Groups = ["alice-g", "bob-g", "shared-g", "other"];

    private GatewayFactory _factory = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?>();
        for (int i = 0; i < Principals.Length; i++)
        {
            settings[$"Auth:ApiKeys:{i}:Name"] = Principals[i];
            settings[$"Auth:ApiKeys:{i}:Hash"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(KeyOf(Principals[i]))));
        }
        for (int r = 0; r < Rules.Length; r++)
        {
            var (principals, topics, groups, operations) = Rules[r];
            foreach (var (section, values) in new[] { ("Principals", principals), ("Topics", topics), ("Groups", groups), ("Operations", operations) })
            {
                string[] items = values.Split(',', StringSplitOptions.RemoveEmptyEntries);
                for (int i = 0; i < items.Length; i++)
                {
                    settings[$"Auth:Rules:{r}:{section}:{i}"] = items[i];
                }
            }
        }
        _factory = new GatewayFactory(settings);
        _client = _factory.CreateClient();
        foreach (string topic in Topics)
        {
            using var created = await SendAsync("admin", HttpMethod.Post, "/v1/topics", $$"""{"name":"{{topic}}","partitions":1}""");
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
    }

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    private static string KeyOf(string principal) => $"{principal}-key-0b1d";

    [Fact]
    public async Task Every_endpoint_answers_every_principal_as_the_rules_say()
    {
        var document = await Http.GetJsonAsync(_client, "/openapi/v1.json");
        var endpoints = _factory.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/v1", StringComparison.Ordinal) == true)
            .ToList();
        Assert.True(endpoints.Count >= 20, $"only {endpoints.Count} /v1 endpoints were found");

        var undeclared = endpoints.Where(e => e.Metadata.GetMetadata<AccessRequirement>() is null && e.Metadata.GetMetadata<AuthenticatedOnly>() is null)
            .Select(e => e.RoutePattern.RawText).ToList();
        Assert.True(undeclared.Count == 0, $"endpoints that declare no access requirement: {string.Join(", ", undeclared)}");

        var wrong = new List<string>();
        int requests = 0;
        // admin last: what it is allowed to do (delete a topic, say) cannot change what the others are answered.
        foreach (string? principal in new string?[] { null, "carol", "bob", "alice", "admin" })
        {
            foreach (var endpoint in endpoints)
            {
                if (endpoint.Metadata.GetMetadata<AccessRequirement>() is not { } requirement)
                {
                    continue;
                }
                string method = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods[0];
                string name = endpoint.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName ?? "";
                foreach (string resource in requirement.Kind == ResourceKind.Topic ? Topics : Groups)
                {
                    string path = Fill(endpoint.RoutePattern.RawText!, requirement.Kind, resource) + (name == "StreamGroup" ? "?topics=orders" : "");
                    string? body = BodyOf(document, name);
                    using var response = await SendAsync(principal, new HttpMethod(method), path, body);
                    requests++;
                    var status = response.StatusCode;
                    bool granted = principal is not null && Allows(principal, requirement.Kind, resource, requirement.AnyOf);
                    string expected = principal is null ? "401" : granted ? "neither 401 nor 403" : "403";
                    bool right = principal is null ? status == HttpStatusCode.Unauthorized
                        : granted ? status is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden) && (int)status < 500
                        : status == HttpStatusCode.Forbidden;
                    if (!right)
                    {
                        wrong.Add($"{principal ?? "nobody"} {method} {path}: {(int)status}, expected {expected}");
                    }
                }
            }
        }
        Assert.True(requests > 300, $"only {requests} requests");
        Assert.True(wrong.Count == 0, string.Join('\n', wrong.Take(40)));
    }

    /// <summary>This test's own reading of the rules: a principal may act if a rule names it, the resource and the operation.</summary>
    private static bool Allows(string principal, ResourceKind kind, string resource, string[] anyOf) =>
        Rules.Any(rule =>
            rule.Principals.Split(',').Any(p => Matches(p, principal))
            && (kind == ResourceKind.Topic ? rule.Topics : rule.Groups).Split(',', StringSplitOptions.RemoveEmptyEntries).Any(p => Matches(p, resource))
            && (rule.Operations == "*" || anyOf.Any(op => rule.Operations.Split(',').Contains(op))));

    private static bool Matches(string pattern, string name) =>
        Regex.IsMatch(name, "^" + string.Join(".*", pattern.Split('*').Select(Regex.Escape)) + "\\z", RegexOptions.None, TimeSpan.FromSeconds(1));

    private static string Fill(string template, ResourceKind kind, string resource) => template
        .Replace("{topic}", kind == ResourceKind.Topic ? resource : "orders", StringComparison.Ordinal)
        .Replace("{group}", kind == ResourceKind.Group ? resource : "other", StringComparison.Ordinal)
        .Replace("{partition}", "0", StringComparison.Ordinal)
        .Replace("{memberId}", "m1", StringComparison.Ordinal);

    /// <summary>The document's example body for the operation, when it takes one.</summary>
    private static string? BodyOf(JsonNode document, string operationId)
    {
        foreach (var (_, operations) in document["paths"]!.AsObject())
        {
            foreach (var (_, operation) in operations!.AsObject())
            {
                if ((string?)operation!["operationId"] == operationId)
                {
                    return operation["requestBody"]?["content"]?["application/json"]?["example"]?.ToJsonString();
                }
            }
        }
        return null;
    }

    private async Task<HttpResponseMessage> SendAsync(string? principal, HttpMethod method, string path, string? json)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = Http.Json(json);
        }
        if (principal is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", KeyOf(principal));
        }
        // Headers only: an event stream that was granted stays open; disposing the answer ends it.
        return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }
}
