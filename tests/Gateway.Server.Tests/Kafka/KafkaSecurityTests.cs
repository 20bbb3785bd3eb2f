using System.Buffers.Binary;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Confluent.Kafka;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// The Kafka listener with credentials configured, driven by Confluent.Kafka and by hand: SASL PLAIN (an API key as
/// the password) and OAUTHBEARER (a JWT) are required before anything but ApiVersions, the HTTP rules decide per topic
/// and group, and a principal's produce quota is one budget across both protocols.
/// </summary>
public sealed class KafkaSecurityTests : IAsyncLifetime
{
    private static readonly byte[] JwtSecret = RandomNumberGenerator.GetBytes(32);
    private KafkaServer _server = null!;

    private static string Sha256(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public async Task InitializeAsync()
    {
        _server = await KafkaServer.StartAsync(
            "--Auth:ApiKeys:0:Name=admin", $"--Auth:ApiKeys:0:Hash={Sha256("admin-key")}",
            "--Auth:ApiKeys:1:Name=alice", $"--Auth:ApiKeys:1:Hash={Sha256("alice-key")}",
            "--Auth:ApiKeys:2:Name=quota", $"--Auth:ApiKeys:2:Hash={Sha256("quota-key")}",
            "--Auth:ApiKeys:3:Name=quota2", $"--Auth:ApiKeys:3:Hash={Sha256("quota2-key")}",
            $"--Auth:Jwt:SigningKeys:0={Convert.ToBase64String(JwtSecret)}", "--Auth:Jwt:Issuer=test-issuer", "--Auth:Jwt:Audience=gateway",
            // admin: everything. alice: produce and fetch orders*, consume alice-*. carol (a JWT): produce logs.*.
            "--Auth:Rules:0:Principals:0=admin", "--Auth:Rules:0:Topics:0=*", "--Auth:Rules:0:Groups:0=*", "--Auth:Rules:0:Operations:0=*",
            "--Auth:Rules:1:Principals:0=alice", "--Auth:Rules:1:Topics:0=orders*", "--Auth:Rules:1:Operations:0=produce", "--Auth:Rules:1:Operations:1=fetch",
            "--Auth:Rules:2:Principals:0=alice", "--Auth:Rules:2:Groups:0=alice-*", "--Auth:Rules:2:Operations:0=consume",
            "--Auth:Rules:3:Principals:0=carol", "--Auth:Rules:3:Topics:0=logs.*", "--Auth:Rules:3:Operations:0=produce",
            "--Auth:Rules:4:Principals:0=quota*", "--Auth:Rules:4:Topics:0=*", "--Auth:Rules:4:Operations:0=produce",
            "--Quotas:ProduceBytesPerSecond=20000");
        _server.Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "admin-key");
        foreach (string topic in new[] { "orders", "logs.app", "secret", "metered" })
        {
            await Http.CreateTopicAsync(_server.Http, topic, 1);
        }
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Jwt(string subject) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = "test-issuer",
        Audience = "gateway",
        Claims = new Dictionary<string, object> { ["sub"] = subject },
        Expires = DateTime.UtcNow.AddMinutes(5),
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(JwtSecret), SecurityAlgorithms.HmacSha256),
    });

    private ProducerConfig Plain(string user, string password) => new()
    {
        BootstrapServers = _server.Bootstrap,
        SecurityProtocol = SecurityProtocol.SaslPlaintext,
        SaslMechanism = SaslMechanism.Plain,
        SaslUsername = user,
        SaslPassword = password,
        MessageTimeoutMs = 5000,
    };

    [Fact]
    public async Task An_API_key_over_SASL_PLAIN_may_do_what_the_rules_grant_its_principal_and_nothing_else()
    {
        using (var producer = new ProducerBuilder<Null, string>(Plain("alice", "alice-key")).Build())
        {
            var delivered = await producer.ProduceAsync("orders", new Message<Null, string> { Value = "o1" });
            Assert.Equal(0, delivered.Offset.Value);
            var refused = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("secret", new Message<Null, string> { Value = "x" }));
            Assert.Equal(ErrorCode.TopicAuthorizationFailed, refused.Error.Code);
        }

        var consumerConfig = new ConsumerConfig(Plain("alice", "alice-key")) { GroupId = "alice-readers", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false };
        using (var consumer = new ConsumerBuilder<Ignore, string>(consumerConfig).Build())
        {
            consumer.Subscribe("orders");
            var record = consumer.Consume(TimeSpan.FromSeconds(20));
            Assert.Equal("o1", record?.Message.Value);
            consumer.Commit(record);
            consumer.Close();
        }
        var group = await Http.GetJsonAsync(_server.Http, "/v1/groups/alice-readers");
        Assert.Equal(1, (long)group["offsets"]![0]!["committedOffset"]!);

        var denied = new ConsumerConfig(Plain("alice", "alice-key")) { GroupId = "someone-elses", AutoOffsetReset = AutoOffsetReset.Earliest };
        var errors = new List<Error>();
        using (var consumer = new ConsumerBuilder<Ignore, string>(denied).SetErrorHandler((_, e) => errors.Add(e)).Build())
        {
            consumer.Subscribe("orders");
            var thrown = Record.Exception(() => consumer.Consume(TimeSpan.FromSeconds(5)));
            Assert.True(
                thrown is ConsumeException { Error.Code: ErrorCode.GroupAuthorizationFailed } || errors.Exists(e => e.Code == ErrorCode.GroupAuthorizationFailed),
                $"no GROUP_AUTHORIZATION_FAILED: {thrown?.Message}; {string.Join("; ", errors.Select(e => e.Reason))}");
        }
    }

    [Fact]
    public async Task A_JWT_over_OAUTHBEARER_names_its_principal()
    {
        var config = new ProducerConfig
        {
            BootstrapServers = _server.Bootstrap,
            SecurityProtocol = SecurityProtocol.SaslPlaintext,
            SaslMechanism = SaslMechanism.OAuthBearer,
            MessageTimeoutMs = 5000,
        };
        using var producer = new ProducerBuilder<Null, string>(config)
            .SetOAuthBearerTokenRefreshHandler((client, _) => client.OAuthBearerSetToken(Jwt("carol"), DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeMilliseconds(), "carol"))
            .Build();

        Assert.Equal(0, (await producer.ProduceAsync("logs.app", new Message<Null, string> { Value = "l1" })).Offset.Value);
        var refused = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("orders", new Message<Null, string> { Value = "x" }));
        Assert.Equal(ErrorCode.TopicAuthorizationFailed, refused.Error.Code);
    }

    [Fact]
    public async Task A_wrong_key_fails_authentication_and_nothing_is_stored()
    {
        var errors = new List<Error>();
        using (var producer = new ProducerBuilder<Null, string>(Plain("alice", "not-a-key")).SetErrorHandler((_, e) => errors.Add(e)).Build())
        {
            await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("orders", new Message<Null, string> { Value = "x" }));
        }
        Assert.Contains(errors, e => e.Code == ErrorCode.Local_Authentication);
        Assert.Equal(0, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/orders/partitions/0/offsets"))["endOffset"]!);
    }

    [Fact]
    public async Task Without_SASL_only_ApiVersions_and_SASL_are_served_and_any_other_request_is_refused_and_closes_the_connection()
    {
        using var client = await RawKafkaClient.ConnectAsync(_server.Bootstrap);
        byte[] versions = await client.RequestAsync(18, 0, [], flexible: false);
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(versions));

        byte[] handshake = await client.RequestAsync(17, 1, [0, 5, .. "PLAIN"u8], flexible: false);
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(handshake));
        byte[] refused = await client.RequestAsync(0, 7, KafkaFrames.ProduceBody("orders", 0, KafkaFrames.OneRecordBatch("sneaky"u8)), flexible: false);

        Assert.Equal(34, BinaryPrimitives.ReadInt16BigEndian(refused)); // ILLEGAL_SASL_STATE
        Assert.True(await client.ClosedAsync());
        Assert.Equal(0, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/orders/partitions/0/offsets"))["endOffset"]!);
    }

    [Fact]
    public async Task A_principals_produce_quota_is_one_budget_across_Kafka_and_HTTP()
    {
        // 100 KB over HTTP against 20 KB/s: admitted, leaving the principal 80 KB (4 s) in debt.
        using var http = Authorized("quota-key");
        string big = $$"""{"records":[{"value":"{{new string('x', 100_000)}}"}]}""";
        using (var response = await http.PostAsync("/v1/topics/metered/records", new StringContent(big, Encoding.UTF8, "application/json")))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        }
        // The same principal over Kafka: accepted (Kafka's quotas delay, they do not refuse), told to wait off the debt.
        using (var client = await RawKafkaClient.ConnectAsync(_server.Bootstrap))
        {
            Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(await client.RequestAsync(17, 1, [0, 5, .. "PLAIN"u8], flexible: false)));
            byte[] token = [0, .. "quota"u8, 0, .. "quota-key"u8];
            byte[] authenticated = await client.RequestAsync(36, 1, [.. KafkaFrames.BigEndian(token.Length), .. token], flexible: false);
            Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(authenticated));
            byte[] answer = await client.RequestAsync(0, 7, KafkaFrames.ProduceBody("metered", 0, KafkaFrames.OneRecordBatch("small"u8)), flexible: false);
            Assert.Equal((0, 1L), KafkaFrames.ProduceResult(answer, "metered"));
            int throttleMs = BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(answer.Length - 4));
            Assert.InRange(throttleMs, 2_000, 5_000);
        }

        // And the other way, for another principal with its own budget: a Kafka produce's bytes count against HTTP's admission.
        using (var producer = new ProducerBuilder<Null, string>(Plain("quota2", "quota2-key")).Build())
        {
            await producer.ProduceAsync("metered", new Message<Null, string> { Value = new string('y', 100_000) });
        }
        using var other = Authorized("quota2-key");
        using var refused = await other.PostAsync("/v1/topics/metered/records", new StringContent("""{"records":[{"value":"x"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.TooManyRequests, refused.StatusCode);
    }

    private HttpClient Authorized(string key)
    {
        var http = new HttpClient { BaseAddress = _server.Http.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }
}
