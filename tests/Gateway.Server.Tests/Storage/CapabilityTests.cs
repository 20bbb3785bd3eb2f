using System.Net;
using Gateway.Storage;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// What the HTTP layer answers over a backend without a capability: the real embedded store, declaring none, gets an
/// <c>Idempotency-Key</c>, an <c>expectedOffset</c> or a topic's own acks answered 501 <c>not_supported</c> naming the
/// capability, with nothing appended or changed, while everything else works as before.
/// </summary>
public sealed class CapabilityTests : IAsyncLifetime
{
    private readonly GatewayFactory _factory = new(declared: StorageCapabilities.None);
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _client = _factory.CreateClient();
        await Http.CreateTopicAsync(_client, "caps", 1);
    }

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task Requests_for_capabilities_the_backend_lacks_are_501_and_append_nothing()
    {
        var keyed = new HttpRequestMessage(HttpMethod.Post, "/v1/topics/caps/records") { Content = Http.Json("""{"records":[{"value":1}]}""") };
        keyed.Headers.Add("Idempotency-Key", "k-1");
        var problem = await Http.AssertProblemAsync(await _client.SendAsync(keyed), HttpStatusCode.NotImplemented, "not_supported");
        Assert.Equal("idempotencyKeys", (string?)problem["capability"]);

        using var conditional = await _client.PostAsync("/v1/topics/caps/partitions/0/records?expectedOffset=0", Http.Json("""{"records":[{"value":2}]}"""));
        problem = await Http.AssertProblemAsync(conditional, HttpStatusCode.NotImplemented, "not_supported");
        Assert.Equal("conditionalAppend", (string?)problem["capability"]);

        // A topic's own acks, at create and at change: refused, naming the capability, and nothing made or changed.
        problem = await Http.PostProblemAsync(_client, "/v1/topics", Http.Json("""{"name":"own-acks","config":{"acks":"memory"}}"""), HttpStatusCode.NotImplemented, "not_supported");
        Assert.Equal("topicAcks", (string?)problem["capability"]);
        await Http.GetProblemAsync(_client, "/v1/topics/own-acks", HttpStatusCode.NotFound, "topic_not_found");
        string before = (await Http.GetJsonAsync(_client, "/v1/topics/caps"))["config"]!.ToJsonString();
        using (var patched = await Http.PatchAsync(_client, "/v1/topics/caps", """{"config":{"acks":"memory","retentionMs":60000}}"""))
        {
            Assert.Equal("topicAcks", (string?)(await Http.AssertProblemAsync(patched, HttpStatusCode.NotImplemented, "not_supported"))["capability"]);
        }
        Assert.Equal(before, (await Http.GetJsonAsync(_client, "/v1/topics/caps"))["config"]!.ToJsonString());

        var offsets = await Http.GetJsonAsync(_client, "/v1/topics/caps/partitions/0/offsets");
        Assert.Equal(0, (long?)offsets["endOffset"]);
        var produced = await Http.ProduceAsync(_client, "caps", """[{"value":3}]""");
        Assert.Equal(0, (long?)produced["offsets"]![0]!["offset"]);
    }
}
