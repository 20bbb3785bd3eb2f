using System.Net;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Server.Tests.Security;

/// <summary>Quotas answer 429 with Retry-After; the clock is the test's, so nothing depends on the machine's speed.</summary>
public sealed class QuotaTests
{
    private static async Task<HttpResponseMessage> ProduceAsync(HttpClient client, string body) =>
        await client.PostAsync("/v1/topics/q/records", new StringContent(body));

    [Fact]
    public async Task Produce_requests_over_the_rate_get_429_with_retry_after_until_the_bucket_refills()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var factory = new GatewayFactory(new() { ["Quotas:ProduceRequestsPerSecond"] = "2" }, time);
        using var client = factory.CreateClient();
        await Http.CreateTopicAsync(client, "q");
        using (var first = await ProduceAsync(client, "a"))
        using (var second = await ProduceAsync(client, "b"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }
        using (var third = await ProduceAsync(client, "c"))
        {
            await Http.AssertProblemAsync(third, HttpStatusCode.TooManyRequests, "quota_exceeded");
            Assert.Equal(TimeSpan.FromSeconds(1), third.Headers.RetryAfter?.Delta);
        }
        time.Advance(TimeSpan.FromSeconds(1));
        using (var later = await ProduceAsync(client, "d"))
        {
            Assert.Equal(HttpStatusCode.OK, later.StatusCode);
        }
        var stored = await Http.GetJsonAsync(client, "/v1/topics/q/partitions/0/records");
        Assert.Equal(["a", "b", "d"], Http.Records(stored).Select(r => (string?)r!["value"]));
    }

    [Fact]
    public async Task A_large_produce_is_served_then_its_bytes_are_paid_off_before_the_next()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var factory = new GatewayFactory(new() { ["Quotas:ProduceBytesPerSecond"] = "1000", ["Quotas:Principals:anonymous:ProduceRequestsPerSecond"] = "0" }, time);
        using var client = factory.CreateClient();
        await Http.CreateTopicAsync(client, "q");
        using (var large = await ProduceAsync(client, new string('x', 5000)))
        {
            Assert.Equal(HttpStatusCode.OK, large.StatusCode);
        }
        using (var next = await ProduceAsync(client, "small"))
        {
            await Http.AssertProblemAsync(next, HttpStatusCode.TooManyRequests, "quota_exceeded");
            Assert.Equal(TimeSpan.FromSeconds(4), next.Headers.RetryAfter?.Delta);
        }
        time.Advance(TimeSpan.FromSeconds(4.5));
        using (var paid = await ProduceAsync(client, "small"))
        {
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        }
    }

    [Fact]
    public async Task Concurrent_long_polls_over_the_cap_get_429()
    {
        using var temp = new TempDirectory("gateway-quota-tests", create: false);
        string data = temp.Path;
        await using var server = await ServerProcess.StartAsync(data, "--Quotas:MaxConcurrentWaits=1");
        var client = server.Client;
        await Http.CreateTopicAsync(client, "q");
        using var waiter = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(90) };
        const string LongPoll = "/v1/topics/q/partitions/0/records?offset=0&waitMs=60000";
        var waiting = waiter.GetAsync(LongPoll);
        // The long-poll holds the one slot once it waits. Until then a probe (which waits too, 1 ms) may get through,
        // or hold the slot itself just when the long-poll arrives, which is then refused and sent again. This waits
        // for a state (up to 30 s on a loaded machine); it times nothing.
        HttpStatusCode status = HttpStatusCode.OK;
        int refusedPolls = 0;
        for (int attempt = 0; attempt < 1500 && status != HttpStatusCode.TooManyRequests; attempt++)
        {
            await Task.Delay(20);
            if (waiting.IsCompleted)
            {
                using var refused = await waiting;
                await Http.AssertProblemAsync(refused, HttpStatusCode.TooManyRequests, "quota_exceeded");
                refusedPolls++;
                waiting = waiter.GetAsync(LongPoll);
                continue;
            }
            using var second = await client.GetAsync("/v1/topics/q/partitions/0/records?offset=0&waitMs=1");
            status = second.StatusCode;
            if (status == HttpStatusCode.TooManyRequests)
            {
                await Http.AssertProblemAsync(second, HttpStatusCode.TooManyRequests, "quota_exceeded");
                Assert.NotNull(second.Headers.RetryAfter);
            }
        }
        Assert.True(status == HttpStatusCode.TooManyRequests, $"No 429 while a long-poll should hold the one slot ({refusedPolls} long-polls refused).\n{server.Output}");
        // A fetch that need not wait takes no slot.
        using (var plain = await client.GetAsync("/v1/topics/q/partitions/0/records?offset=0"))
        {
            Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        }
        using (var produced = await ProduceAsync(client, "wake"))
        {
            Assert.Equal(HttpStatusCode.OK, produced.StatusCode);
        }
        using var woken = await waiting;
        Assert.Equal("wake", (string?)Http.Records(await Http.AssertJsonAsync(woken))[0]!["value"]);
        using var again = await client.GetAsync("/v1/topics/q/partitions/0/records?offset=1&waitMs=1");
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        await server.DisposeAsync();
    }

    [Fact]
    public async Task Cors_answers_configured_origins_only()
    {
        await using var factory = new GatewayFactory(new() { ["Cors:AllowedOrigins:0"] = "https://app.example" });
        using var client = factory.CreateClient();
        foreach (var (origin, allowed) in new[] { ("https://app.example", true), ("https://evil.example", false) })
        {
            using var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/topics/q/records");
            preflight.Headers.Add("Origin", origin);
            preflight.Headers.Add("Access-Control-Request-Method", "POST");
            preflight.Headers.Add("Access-Control-Request-Headers", "idempotency-key, content-type");
            using var response = await client.SendAsync(preflight);
            Assert.Equal(allowed, response.Headers.TryGetValues("Access-Control-Allow-Origin", out var values) && values.Single() == origin);
        }
    }
}
