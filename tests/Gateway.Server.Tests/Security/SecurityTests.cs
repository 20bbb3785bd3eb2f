using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests.Security;

/// <summary>
/// Authentication and authorization against the real server process: every operation tried by every kind of
/// caller; a success without a granting rule fails the test.
/// </summary>
public sealed class SecurityTests : IAsyncLifetime
{
    private static readonly byte[] JwtSecret = RandomNumberGenerator.GetBytes(32);
    private readonly TempDirectory _dataDirectory = new("gateway-security-tests", create: false);
    private ServerProcess _server = null!;

    private static string Sha256(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public async Task InitializeAsync()
    {
        string[] settings =
        [
            "--Auth:ApiKeys:0:Name=admin", $"--Auth:ApiKeys:0:Hash={Sha256("admin-key")}",
            "--Auth:ApiKeys:1:Name=alice", $"--Auth:ApiKeys:1:Hash={Sha256("alice-key")}",
            "--Auth:ApiKeys:2:Name=bob", $"--Auth:ApiKeys:2:Hash={Sha256("bob-key")}",
            $"--Auth:Jwt:SigningKeys:0={Convert.ToBase64String(JwtSecret)}", "--Auth:Jwt:Issuer=test-issuer", "--Auth:Jwt:Audience=gateway",
            // admin: everything. alice: produce and fetch orders*, consume alice-*. bob: fetch orders, consume bob-*.
            // carol (a JWT subject): produce logs.*.
            "--Auth:Rules:0:Principals:0=admin", "--Auth:Rules:0:Topics:0=*", "--Auth:Rules:0:Groups:0=*", "--Auth:Rules:0:Operations:0=*",
            "--Auth:Rules:1:Principals:0=alice", "--Auth:Rules:1:Topics:0=orders*", "--Auth:Rules:1:Operations:0=produce", "--Auth:Rules:1:Operations:1=fetch",
            "--Auth:Rules:2:Principals:0=alice", "--Auth:Rules:2:Groups:0=alice-*", "--Auth:Rules:2:Operations:0=consume",
            "--Auth:Rules:3:Principals:0=bob", "--Auth:Rules:3:Topics:0=orders", "--Auth:Rules:3:Operations:0=fetch",
            "--Auth:Rules:4:Principals:0=bob", "--Auth:Rules:4:Groups:0=bob-*", "--Auth:Rules:4:Operations:0=consume",
            "--Auth:Rules:5:Principals:0=carol", "--Auth:Rules:5:Topics:0=logs.*", "--Auth:Rules:5:Operations:0=produce",
            // alice and bob share the groups shared-*; bob may not fetch orders-eu.
            "--Auth:Rules:6:Principals:0=alice", "--Auth:Rules:6:Principals:1=bob", "--Auth:Rules:6:Groups:0=shared-*", "--Auth:Rules:6:Operations:0=consume",
        ];
        _server = await ServerProcess.StartAsync(_dataDirectory.Path, settings);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dataDirectory.Dispose();
    }

    private static string Jwt(string subject, DateTime? expires = null, string issuer = "test-issuer", byte[]? key = null) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = issuer,
        Audience = "gateway",
        Claims = new Dictionary<string, object> { ["sub"] = subject },
        NotBefore = (expires ?? DateTime.UtcNow.AddMinutes(5)).AddMinutes(-10),
        Expires = expires ?? DateTime.UtcNow.AddMinutes(5),
        IssuedAt = (expires ?? DateTime.UtcNow.AddMinutes(5)).AddMinutes(-10),
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key ?? JwtSecret), SecurityAlgorithms.HmacSha256),
    });

    private async Task<HttpStatusCode> SendAsync(string? token, HttpMethod method, string path, string? json = null, bool stream = false)
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
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await _server.Client.SendAsync(request, stream ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead, cancel.Token);
        if ((int)response.StatusCode is 401 or 403)
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        }
        return response.StatusCode;
    }

    [Fact]
    public async Task The_authorization_matrix_has_no_unauthorized_success()
    {
        const string admin = "admin-key";
        foreach (string topic in new[] { "orders", "orders-eu", "secret", "logs.app" })
        {
            Assert.Equal(HttpStatusCode.Created, await SendAsync(admin, HttpMethod.Post, "/v1/topics", $$"""{"name":"{{topic}}"}"""));
        }
        var callers = new (string Name, string? Token)[]
        {
            ("nobody", null), ("wrong key", "not-a-key"), ("forged jwt", Jwt("admin", key: RandomNumberGenerator.GetBytes(32))),
            ("expired jwt", Jwt("alice", DateTime.UtcNow.AddMinutes(-5))), ("foreign issuer", Jwt("admin", issuer: "elsewhere")),
            ("alice", "alice-key"), ("bob", "bob-key"), ("carol", Jwt("carol")), ("admin", admin),
        };
        // (operation, method, path, body, is it a stream, principals a rule grants it to)
        var operations = new (string Name, HttpMethod Method, string Path, string? Body, bool Stream, string[] Granted)[]
        {
            ("create topic", HttpMethod.Post, "/v1/topics", """{"name":"orders-new"}""", false, ["admin"]),
            ("describe orders", HttpMethod.Get, "/v1/topics/orders", null, false, ["admin", "alice", "bob"]),
            ("describe secret", HttpMethod.Get, "/v1/topics/secret", null, false, ["admin"]),
            ("offsets of orders-eu", HttpMethod.Get, "/v1/topics/orders-eu/partitions/0/offsets", null, false, ["admin", "alice"]),
            ("produce orders", HttpMethod.Post, "/v1/topics/orders/records", """{"records":[{"value":1}]}""", false, ["admin", "alice"]),
            ("produce to a partition of orders-eu", HttpMethod.Post, "/v1/topics/orders-eu/partitions/0/records", """{"records":[{"value":1}]}""", false, ["admin", "alice"]),
            ("produce logs.app", HttpMethod.Post, "/v1/topics/logs.app/records", """{"records":[{"value":1}]}""", false, ["admin", "carol"]),
            ("produce secret", HttpMethod.Post, "/v1/topics/secret/records", """{"records":[{"value":1}]}""", false, ["admin"]),
            ("fetch orders", HttpMethod.Get, "/v1/topics/orders/partitions/0/records", null, false, ["admin", "alice", "bob"]),
            ("fetch logs.app", HttpMethod.Get, "/v1/topics/logs.app/partitions/0/records", null, false, ["admin"]),
            ("stream orders", HttpMethod.Get, "/v1/topics/orders/events", null, true, ["admin", "alice", "bob"]),
            ("stream secret", HttpMethod.Get, "/v1/topics/secret/events", null, true, ["admin"]),
            ("change orders", HttpMethod.Patch, "/v1/topics/orders", """{"config":{"retentionMs":86400000}}""", false, ["admin"]),
            ("delete records of orders", HttpMethod.Delete, "/v1/topics/orders/partitions/0/records?before=0", null, false, ["admin"]),
            ("join alice-g on orders", HttpMethod.Post, "/v1/groups/alice-g/members", """{"topics":["orders"]}""", false, ["admin", "alice"]),
            ("join alice-g on secret", HttpMethod.Post, "/v1/groups/alice-g/members", """{"topics":["secret"]}""", false, ["admin"]),
            ("join bob-g on orders", HttpMethod.Post, "/v1/groups/bob-g/members", """{"topics":["orders"]}""", false, ["admin", "bob"]),
            ("join bob-g on orders-eu", HttpMethod.Post, "/v1/groups/bob-g/members", """{"topics":["orders-eu"]}""", false, ["admin"]),
            ("heartbeat in alice-g", HttpMethod.Post, "/v1/groups/alice-g/members/m1/heartbeat", null, false, ["admin", "alice"]),
            ("fetch as member of bob-g", HttpMethod.Get, "/v1/groups/bob-g/members/m1/records", null, false, ["admin", "bob"]),
            ("commit in alice-g", HttpMethod.Post, "/v1/groups/alice-g/members/m1/offsets", """{"generation":1}""", false, ["admin", "alice"]),
            ("leave alice-g", HttpMethod.Delete, "/v1/groups/alice-g/members/m1", null, false, ["admin", "alice"]),
            ("describe alice-g", HttpMethod.Get, "/v1/groups/alice-g", null, false, ["admin", "alice"]),
            ("reset alice-g", HttpMethod.Put, "/v1/groups/alice-g/offsets", """{"topic":"orders","to":"earliest"}""", false, ["admin"]),
            ("delete bob-g", HttpMethod.Delete, "/v1/groups/bob-g", null, false, ["admin"]),
            ("stream group alice-g on orders", HttpMethod.Get, "/v1/groups/alice-g/events?topics=orders", null, true, ["admin", "alice"]),
            ("stream group alice-g on secret", HttpMethod.Get, "/v1/groups/alice-g/events?topics=secret", null, true, ["admin"]),
        };
        var unauthorizedSuccesses = new List<string>();
        var refusedGrants = new List<string>();
        foreach (var (caller, token) in callers)
        {
            foreach (var op in operations)
            {
                var status = await SendAsync(token, op.Method, op.Path, op.Body, op.Stream);
                bool granted = op.Granted.Contains(caller);
                bool authenticates = token is "alice-key" or "bob-key" or admin || caller == "carol";
                if (!authenticates)
                {
                    Assert.True(status == HttpStatusCode.Unauthorized, $"{caller} / {op.Name}: {(int)status}, not 401");
                }
                else if (!granted && status != HttpStatusCode.Forbidden)
                {
                    unauthorizedSuccesses.Add($"{caller} / {op.Name}: {(int)status}");
                }
                else if (granted && (status is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized || (int)status >= 500))
                {
                    refusedGrants.Add($"{caller} / {op.Name}: {(int)status}");
                }
            }
        }
        Assert.Empty(unauthorizedSuccesses);
        Assert.Empty(refusedGrants);
    }

    [Fact]
    public async Task Lists_show_only_what_the_caller_may_see_and_operations_stay_open()
    {
        Assert.Equal(HttpStatusCode.Created, await SendAsync("admin-key", HttpMethod.Post, "/v1/topics", """{"name":"orders"}"""));
        Assert.Equal(HttpStatusCode.Created, await SendAsync("admin-key", HttpMethod.Post, "/v1/topics", """{"name":"secret"}"""));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/topics");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "bob-key");
        using var response = await _server.Client.SendAsync(request);
        var names = (await Http.AssertJsonAsync(response))["topics"]!.AsArray().Select(t => (string?)t!["name"]).ToList();
        Assert.Equal(["orders"], names);

        Assert.Equal(HttpStatusCode.OK, await SendAsync(null, HttpMethod.Get, "/health/ready"));
        Assert.Equal(HttpStatusCode.OK, await SendAsync(null, HttpMethod.Get, "/openapi/v1.json"));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(null, HttpMethod.Get, "/metrics"));
        // Metrics show every topic and group: only a rule granting them (here admin's * on * and *) lets a caller read them.
        Assert.Equal(HttpStatusCode.Forbidden, await SendAsync("bob-key", HttpMethod.Get, "/metrics"));
        Assert.Equal(HttpStatusCode.OK, await SendAsync("admin-key", HttpMethod.Get, "/metrics"));
    }

    [Fact]
    public async Task A_shared_group_does_not_let_one_principal_read_through_another_ones_member()
    {
        Assert.Equal(HttpStatusCode.Created, await SendAsync("admin-key", HttpMethod.Post, "/v1/topics", """{"name":"orders-eu"}"""));
        using var join = new HttpRequestMessage(HttpMethod.Post, "/v1/groups/shared-g/members") { Content = Http.Json("""{"topics":["orders-eu"]}""") };
        join.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "alice-key");
        using var joined = await _server.Client.SendAsync(join);
        string member = (string)(await Http.AssertJsonAsync(joined))["memberId"]!;

        // alice's member is hers alone: to bob it does not exist.
        Assert.Equal(HttpStatusCode.NotFound, await SendAsync("bob-key", HttpMethod.Get, $"/v1/groups/shared-g/members/{member}/records"));
        Assert.Equal(HttpStatusCode.OK, await SendAsync("alice-key", HttpMethod.Get, $"/v1/groups/shared-g/members/{member}/records"));
        // Nor can it join the group on that topic itself, or move the group's offsets of it.
        Assert.Equal(HttpStatusCode.Forbidden, await SendAsync("bob-key", HttpMethod.Post, "/v1/groups/shared-g/members", """{"topics":["orders-eu"]}"""));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(null, HttpMethod.Get, "/METRICS"));
    }

    [Fact]
    public async Task Event_streams_take_the_credential_from_the_query_and_other_endpoints_do_not()
    {
        Assert.Equal(HttpStatusCode.Created, await SendAsync("admin-key", HttpMethod.Post, "/v1/topics", """{"name":"orders"}"""));
        using (var stream = await _server.Client.GetAsync("/v1/topics/orders/events?access_token=bob-key", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            Assert.Equal("text/event-stream", stream.Content.Headers.ContentType?.MediaType);
        }
        using (var jwtStream = await _server.Client.GetAsync($"/v1/topics/logs.app/events?access_token={Jwt("carol")}", HttpCompletionOption.ResponseHeadersRead))
        {
            // carol (a JWT subject) authenticates from the query too; she may produce logs.*, not read it.
            Assert.Equal(HttpStatusCode.Forbidden, jwtStream.StatusCode);
        }
        // A token may not name an API key's principal (admin), even signed with the issuer's key.
        await Http.GetProblemAsync(_server.Client, $"/v1/topics/orders/events?access_token={Jwt("admin")}", HttpStatusCode.Unauthorized, "invalid_credentials");
        await Http.GetProblemAsync(_server.Client, "/v1/topics/orders/events?access_token=wrong", HttpStatusCode.Unauthorized, "invalid_credentials");
        await Http.GetProblemAsync(_server.Client, "/v1/topics/orders/partitions/0/records?access_token=bob-key", HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Fact]
    public async Task Without_credentials_the_server_refuses_to_listen_beyond_loopback_unless_told()
    {
        string data = _dataDirectory.Path + "-open";
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ServerProcess.StartAsync(data, "--urls=http://0.0.0.0:0"));
        Assert.Contains("exited with 2", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Auth:AllowAnonymous=true", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(data, "topics")), "nothing was opened");

        var open = await Assert.ThrowsAsync<InvalidOperationException>(() => ServerProcess.StartAsync(data, "--urls=http://192.0.2.1:0;http://127.0.0.1:0"));
        Assert.Contains("192.0.2.1", open.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1:0,", open.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080", null, false, false)]
    [InlineData("http://localhost:8080;http://[::1]:8080", null, false, false)]
    [InlineData("http://0.0.0.0:8080", null, false, true)]
    [InlineData("http://*:8080", null, false, true)]
    [InlineData("http://+:8080", null, false, true)]
    [InlineData("http://10.1.2.3:8080", null, false, true)]
    [InlineData(null, "8080", false, true)]
    [InlineData("http://0.0.0.0:8080", null, true, false)]
    public void The_start_check_knows_loopback_from_exposed_addresses(string? urls, string? httpPorts, bool allowAnonymous, bool refused)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["urls"] = urls,
            ["http_ports"] = httpPorts,
            ["Auth:AllowAnonymous"] = allowAnonymous ? "true" : "false",
        }).Build();
        Assert.Equal(refused, Gateway.Server.Security.GatewaySecurity.UnsafeStartReason(configuration) is not null);
        var withKey = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["urls"] = urls,
            ["Auth:ApiKeys:0:Name"] = "k",
            ["Auth:ApiKeys:0:Hash"] = Sha256("k"),
        }).Build();
        Assert.Null(Gateway.Server.Security.GatewaySecurity.UnsafeStartReason(withKey));
    }
}
