using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests.Security;

/// <summary>
/// The ways in that an attack found (issue 29), closed: members bound to the principal that made them, JWT subjects
/// that cannot mint API-key principals or smuggle a newline or a second claim, metrics behind a grant of their own,
/// hidden topics answered like absent ones, the query credential on the event-stream routes alone, idempotency keys
/// scoped by principal. One real server with API keys, a JWT issuer and rules.
/// </summary>
public sealed class SecurityHardeningTests : IAsyncLifetime
{
    private static readonly byte[] JwtSecret = RandomNumberGenerator.GetBytes(32);
    private readonly TempDirectory _dataDirectory = new("gateway-hardening-tests", create: false);
    private ServerProcess _server = null!;

    private static string Sha256(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dataDirectory.Path);
        string[] settings =
        [
            "--Auth:ApiKeys:0:Name=ops", $"--Auth:ApiKeys:0:Hash={Sha256("ops-key")}",
            "--Auth:ApiKeys:1:Name=alice", $"--Auth:ApiKeys:1:Hash={Sha256("alice-key")}",
            "--Auth:ApiKeys:2:Name=bob", $"--Auth:ApiKeys:2:Hash={Sha256("bob-key")}",
            "--Auth:ApiKeys:3:Name=prometheus", $"--Auth:ApiKeys:3:Hash={Sha256("prometheus-key")}",
            $"--Auth:Jwt:SigningKeys:0={Convert.ToBase64String(JwtSecret)}", "--Auth:Jwt:Issuer=idp", "--Auth:Jwt:Audience=gateway",
            // ops: everything. alice: produce and fetch orders*. bob: everything on bob.* and orders. Both consume shared-*.
            // prometheus: metrics alone. carol, a JWT subject: fetch orders.
            "--Auth:Rules:0:Principals:0=ops", "--Auth:Rules:0:Topics:0=*", "--Auth:Rules:0:Groups:0=*", "--Auth:Rules:0:Operations:0=*",
            "--Auth:Rules:1:Principals:0=alice", "--Auth:Rules:1:Topics:0=orders*", "--Auth:Rules:1:Operations:0=produce", "--Auth:Rules:1:Operations:1=fetch",
            "--Auth:Rules:2:Principals:0=bob", "--Auth:Rules:2:Topics:0=bob.*", "--Auth:Rules:2:Topics:1=orders", "--Auth:Rules:2:Operations:0=*",
            "--Auth:Rules:3:Principals:0=alice", "--Auth:Rules:3:Principals:1=bob", "--Auth:Rules:3:Groups:0=shared-*", "--Auth:Rules:3:Operations:0=consume",
            "--Auth:Rules:4:Principals:0=prometheus", "--Auth:Rules:4:Operations:0=metrics",
            "--Auth:Rules:5:Principals:0=carol", "--Auth:Rules:5:Topics:0=orders", "--Auth:Rules:5:Operations:0=fetch",
        ];
        _server = await ServerProcess.StartAsync(_dataDirectory.Path, settings);
        foreach (string topic in new[] { "orders", "bob.secret" })
        {
            Assert.Equal(HttpStatusCode.Created, await StatusAsync("ops-key", HttpMethod.Post, "/v1/topics", $$"""{"name":"{{topic}}"}"""));
        }
        Assert.Equal(HttpStatusCode.OK, await StatusAsync("bob-key", HttpMethod.Post, "/v1/topics/bob.secret/records", """{"records":[{"value":"bob's"}]}"""));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dataDirectory.Dispose();
    }

    private async Task<HttpResponseMessage> SendAsync(string? token, HttpMethod method, string path, string? json = null, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = Http.Json(json);
        }
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return await _server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    private async Task<HttpStatusCode> StatusAsync(string? token, HttpMethod method, string path, string? json = null)
    {
        using var response = await SendAsync(token, method, path, json);
        return response.StatusCode;
    }

    private async Task<string> JoinAsync(string token, string group, string topics, string? memberId = null)
    {
        string body = memberId is null ? $$"""{"topics":[{{topics}}]}""" : $$"""{"topics":[{{topics}}],"memberId":"{{memberId}}"}""";
        using var response = await SendAsync(token, HttpMethod.Post, $"/v1/groups/{group}/members", body);
        var joined = await Http.AssertJsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.Created, joined.ToJsonString());
        return (string)joined["memberId"]!;
    }

    [Fact]
    public async Task A_member_answers_only_to_the_principal_that_made_it()
    {
        string member = await JoinAsync("alice-key", "shared-g", "\"orders\"", "alice-1");
        // bob, who may consume the group too, cannot rejoin it with his own topic, read, commit, heartbeat or leave through it.
        using (var rejoin = await SendAsync("bob-key", HttpMethod.Post, "/v1/groups/shared-g/members", $$"""{"topics":["bob.secret"],"memberId":"{{member}}"}"""))
        {
            await Http.AssertProblemAsync(rejoin, HttpStatusCode.NotFound, "unknown_member");
        }
        foreach (var (method, path, body) in new (HttpMethod, string, string?)[]
        {
            (HttpMethod.Get, $"/v1/groups/shared-g/members/{member}/records", null),
            (HttpMethod.Post, $"/v1/groups/shared-g/members/{member}/heartbeat", null),
            (HttpMethod.Post, $"/v1/groups/shared-g/members/{member}/offsets", """{"generation":1,"offsets":[{"topic":"orders","partition":0,"offset":0}]}"""),
            (HttpMethod.Delete, $"/v1/groups/shared-g/members/{member}", null),
        })
        {
            using var response = await SendAsync("bob-key", method, path, body);
            await Http.AssertProblemAsync(response, HttpStatusCode.NotFound, "unknown_member");
        }
        Assert.Equal(HttpStatusCode.OK, await StatusAsync("alice-key", HttpMethod.Post, $"/v1/groups/shared-g/members/{member}/heartbeat"));
    }

    [Fact]
    public async Task A_waiting_long_poll_never_returns_records_of_a_topic_its_caller_may_not_fetch()
    {
        string member = await JoinAsync("alice-key", "shared-w", "\"orders\"", "alice-w");
        using var poll = SendAsync("alice-key", HttpMethod.Get, $"/v1/groups/shared-w/members/{member}/records?waitMs=3000");
        await Task.Delay(300);
        // Someone else tries to turn alice's waiting member toward bob.secret: refused, and the poll sees nothing of it.
        using (var rejoin = await SendAsync("ops-key", HttpMethod.Post, "/v1/groups/shared-w/members", $$"""{"topics":["bob.secret"],"memberId":"{{member}}"}"""))
        {
            await Http.AssertProblemAsync(rejoin, HttpStatusCode.NotFound, "unknown_member");
        }
        using var answered = await poll;
        string text = await answered.Content.ReadAsStringAsync();
        Assert.DoesNotContain("bob's", text, StringComparison.Ordinal);
        Assert.DoesNotContain("bob.secret", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Jwt_subjects_cannot_name_api_key_principals_or_smuggle_ambiguity()
    {
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(Jwt("""{"sub":"carol"}"""), HttpMethod.Get, "/v1/topics/orders"));
        foreach (string payload in new[]
        {
            """{"sub":"ops"}""",                     // an API key's principal
            """{"sub":"bob"}""",
            """{"sub":"carol\n"}""",                 // a newline the rules' patterns must not ignore
            """{"sub":"carol","sub":"ops"}""",       // a claim given twice
            """{"sub":"ops","sub":"carol"}""",
        })
        {
            using var response = await SendAsync(Jwt(payload), HttpMethod.Get, "/v1/topics/bob.secret");
            await Http.AssertProblemAsync(response, HttpStatusCode.Unauthorized, "invalid_credentials");
        }
        long exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        using (var stringExpiry = await SendAsync(Jwt($$"""{"sub":"carol","exp":"{{exp}}"}""", withTimes: false), HttpMethod.Get, "/v1/topics/orders"))
        {
            await Http.AssertProblemAsync(stringExpiry, HttpStatusCode.Unauthorized, "invalid_credentials");
        }
    }

    [Fact]
    public async Task Metrics_need_a_grant_of_their_own()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(null, HttpMethod.Get, "/metrics"));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync("alice-key", HttpMethod.Get, "/metrics"));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync("bob-key", HttpMethod.Get, "/metrics"));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync("prometheus-key", HttpMethod.Get, "/metrics"));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync("ops-key", HttpMethod.Get, "/metrics"));
    }

    [Fact]
    public async Task A_hidden_topic_is_answered_like_an_absent_one_and_left_out_of_group_views()
    {
        string member = await JoinAsync("alice-key", "shared-h", "\"orders\"");
        string bobs = await JoinAsync("bob-key", "shared-h", "\"bob.secret\"");
        var heartbeat = await Http.AssertJsonAsync(await SendAsync("alice-key", HttpMethod.Post, $"/v1/groups/shared-h/members/{member}/heartbeat"));
        long generation = (long)heartbeat["generation"]!;
        string Commit(string topic) => $$"""{"generation":{{generation}},"offsets":[{"topic":"{{topic}}","partition":0,"offset":999}]}""";
        using (var hidden = await SendAsync("alice-key", HttpMethod.Post, $"/v1/groups/shared-h/members/{member}/offsets", Commit("bob.secret")))
        using (var absent = await SendAsync("alice-key", HttpMethod.Post, $"/v1/groups/shared-h/members/{member}/offsets", Commit("no.such.topic")))
        {
            Assert.Equal(absent.StatusCode, hidden.StatusCode);
            var hiddenProblem = await Http.AssertJsonAsync(hidden);
            var absentProblem = await Http.AssertJsonAsync(absent);
            Assert.Equal((string?)absentProblem["code"], (string?)hiddenProblem["code"]);
            Assert.DoesNotContain("endOffset", hiddenProblem.ToJsonString(), StringComparison.Ordinal);
        }
        var described = await Http.AssertJsonAsync(await SendAsync("alice-key", HttpMethod.Get, "/v1/groups/shared-h"));
        Assert.DoesNotContain("bob.secret", described.ToJsonString(), StringComparison.Ordinal);
        Assert.Contains(bobs, described.ToJsonString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/v1/topics/events")]
    [InlineData("/v1/groups/events")]
    [InlineData("/v1/topics/orders/partitions/0/records")]
    public async Task The_query_credential_is_taken_on_the_event_stream_routes_alone(string path)
    {
        using var response = await _server.Client.GetAsync($"{path}?access_token=ops-key");
        await Http.AssertProblemAsync(response, HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Fact]
    public async Task Idempotency_keys_belong_to_the_principal_that_sent_them()
    {
        using (var alice = await SendAsync("alice-key", HttpMethod.Post, "/v1/topics/orders/records", """{"records":[{"value":"alice's"}]}""", "order-42"))
        {
            Assert.Equal(HttpStatusCode.OK, alice.StatusCode);
        }
        // ops' own request with the same key is its own: appended, not 422, not alice's replay.
        using (var ops = await SendAsync("ops-key", HttpMethod.Post, "/v1/topics/orders/records", """{"records":[{"value":"ops'"}]}""", "order-42"))
        {
            Assert.Equal(HttpStatusCode.OK, ops.StatusCode);
            Assert.False(ops.Headers.Contains("Idempotency-Replayed"));
        }
        using (var again = await SendAsync("ops-key", HttpMethod.Post, "/v1/topics/orders/records", """{"records":[{"value":"ops'"}]}""", "order-42"))
        {
            Assert.Equal("true", again.Headers.GetValues("Idempotency-Replayed").Single());
        }
        var records = Http.Records(await Http.AssertJsonAsync(await SendAsync("ops-key", HttpMethod.Get, "/v1/topics/orders/partitions/0/records?offset=0")));
        Assert.Equal(["alice's", "ops'"], records.Select(r => (string)r!["value"]!));
    }

    /// <summary>A token signed with the issuer's key, its payload written as given (so that it can hold what libraries would not write).</summary>
    private static string Jwt(string claims, bool withTimes = true)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string payload = claims.TrimEnd('}') + $$""","iss":"idp","aud":"gateway"{{(withTimes ? $",\"iat\":{now},\"nbf\":{now - 60},\"exp\":{now + 300}" : "")}}}""";
        string header = Base64Url("""{"alg":"HS256","typ":"JWT"}""");
        string body = Base64Url(payload);
        byte[] signature = HMACSHA256.HashData(JwtSecret, Encoding.ASCII.GetBytes($"{header}.{body}"));
        return $"{header}.{body}.{Base64UrlEncoder.Encode(signature)}";
    }

    private static string Base64Url(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));
}
