using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Gateway.Storage;

namespace Gateway.Server.Tests.Records;

/// <summary>Idempotency-Key and conditional appends: capabilities of the backend, skipped (with the reason) where it lacks them.</summary>
public sealed class IdempotencyApiTests : IAsyncLifetime
{
    private readonly TempDirectory _dataDirectory = new("gateway-idempotency-tests", create: false);
    private GatewayFactory _factory = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        Start();
        await Http.CreateTopicAsync(_client, "idem", 3);
    }

    public async Task DisposeAsync()
    {
        await _factory.DisposeAsync();
        _dataDirectory.Dispose();
    }

    private void Start()
    {
        _factory = new GatewayFactory(dataDirectory: _dataDirectory.Path);
        _client = _factory.CreateClient();
    }

    private async Task<HttpResponseMessage> PostAsync(string key, string body, string contentType = "application/json", string path = "/v1/topics/idem/records")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, contentType) };
        request.Headers.Add("Idempotency-Key", key);
        return await _client.SendAsync(request);
    }

    private async Task<long> TotalEndOffsetAsync()
    {
        var topic = await Http.GetJsonAsync(_client, "/v1/topics/idem");
        return topic["partitions"]!.AsArray().Sum(p => (long)p!["endOffset"]!);
    }

    [SkippableFact]
    public async Task A_retry_with_the_same_key_and_body_appends_nothing_and_replays_the_answer()
    {
        _factory.Require(StorageCapabilities.IdempotencyKeys);
        const string body = """{"records":[{"value":1},{"key":"k","value":2},{"value":3}]}""";
        using var first = await PostAsync("key-1", body);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.False(first.Headers.Contains("Idempotency-Replayed"));
        string answer = await first.Content.ReadAsStringAsync();

        using var retry = await PostAsync("key-1", body);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal("true", retry.Headers.GetValues("Idempotency-Replayed").Single());
        Assert.Equal(answer, await retry.Content.ReadAsStringAsync());
        Assert.Equal(3, await TotalEndOffsetAsync());

        // A different key is a different request.
        using var other = await PostAsync("key-2", body);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal(6, await TotalEndOffsetAsync());
    }

    [SkippableFact]
    public async Task The_same_key_with_another_body_is_422_and_appends_nothing()
    {
        _factory.Require(StorageCapabilities.IdempotencyKeys);
        using (var first = await PostAsync("reused", """{"records":[{"value":"a"}]}"""))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        using var second = await PostAsync("reused", """{"records":[{"value":"b"}]}""");
        await Http.AssertProblemAsync(second, HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        Assert.Equal(1, await TotalEndOffsetAsync());
    }

    [SkippableFact]
    public async Task Concurrent_attempts_with_one_key_append_once_and_all_get_the_same_answer()
    {
        _factory.Require(StorageCapabilities.IdempotencyKeys);
        const string body = """{"records":[{"value":"once"}]}""";
        var attempts = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => PostAsync("racy", body)));
        var answers = new HashSet<string>();
        foreach (var response in attempts)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            answers.Add(await response.Content.ReadAsStringAsync());
            response.Dispose();
        }
        Assert.Single(answers);
        Assert.Equal(1, await TotalEndOffsetAsync());
    }

    [SkippableFact]
    public async Task Raw_and_ndjson_bodies_are_idempotent_too_and_keys_survive_a_restart()
    {
        _factory.Require(StorageCapabilities.IdempotencyKeys);
        using (var raw = await PostAsync("raw-1", "plain text", "text/plain", "/v1/topics/idem/records?key=user"))
        {
            Assert.Equal(HttpStatusCode.OK, raw.StatusCode);
        }
        using (var lines = await PostAsync("nd-1", "{\"value\":1}\n{\"value\":2}\n", "application/x-ndjson"))
        {
            Assert.Equal(HttpStatusCode.OK, lines.StatusCode);
        }
        await _factory.DisposeAsync();
        Start();
        using (var raw = await PostAsync("raw-1", "plain text", "text/plain", "/v1/topics/idem/records?key=user"))
        {
            Assert.Equal("true", raw.Headers.GetValues("Idempotency-Replayed").Single());
        }
        using (var lines = await PostAsync("nd-1", "{\"value\":1}\n{\"value\":2}\n", "application/x-ndjson"))
        {
            Assert.Equal("true", lines.Headers.GetValues("Idempotency-Replayed").Single());
        }
        using (var differentKey = await PostAsync("raw-1", "plain text", "text/plain", "/v1/topics/idem/records?key=someone-else"))
        {
            await Http.AssertProblemAsync(differentKey, HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        }
        Assert.Equal(3, await TotalEndOffsetAsync());
    }

    [SkippableFact]
    public async Task A_replayed_conditional_append_is_not_a_mismatch()
    {
        _factory.Require(StorageCapabilities.IdempotencyKeys | StorageCapabilities.ConditionalAppend);
        const string body = """{"records":[{"value":"event 0"}]}""";
        using (var first = await PostAsync("cond", body, path: "/v1/topics/idem/partitions/1/records?expectedOffset=0"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        using var retry = await PostAsync("cond", body, path: "/v1/topics/idem/partitions/1/records?expectedOffset=0");
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal("true", retry.Headers.GetValues("Idempotency-Replayed").Single());
        Assert.Equal(0, (long)JsonNode.Parse(await retry.Content.ReadAsStringAsync())!["offsets"]![0]!["offset"]!);
    }

    [SkippableFact]
    public async Task Many_racers_on_one_expected_offset_get_exactly_one_success_per_offset()
    {
        _factory.Require(StorageCapabilities.ConditionalAppend);
        for (int offset = 0; offset < 5; offset++)
        {
            var racers = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
                _client.PostAsync($"/v1/topics/idem/partitions/2/records?expectedOffset={offset}", Http.Json($$"""{"records":[{"value":"racer {{i}}"}]}"""))));
            Assert.Single(racers, r => r.StatusCode == HttpStatusCode.OK);
            Assert.Equal(7, racers.Count(r => r.StatusCode == HttpStatusCode.PreconditionFailed));
            foreach (var r in racers)
            {
                r.Dispose();
            }
        }
        var stored = Http.Records(await Http.GetJsonAsync(_client, "/v1/topics/idem/partitions/2/records"));
        Assert.Equal(5, stored.Count);
    }

    [SkippableFact]
    public async Task A_reused_key_is_refused_even_when_its_records_would_land_elsewhere()
    {
        _factory.Require(StorageCapabilities.IdempotencyKeys);
        using (var first = await PostAsync("elsewhere", """{"records":[{"value":"a"}]}""", path: "/v1/topics/idem/partitions/0/records"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        using var second = await PostAsync("elsewhere", """{"records":[{"value":"b"}]}""", path: "/v1/topics/idem/partitions/2/records");
        await Http.AssertProblemAsync(second, HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        Assert.Equal(1, await TotalEndOffsetAsync());
    }

    [SkippableFact]
    public async Task A_malformed_key_is_refused()
    {
        _factory.Require(StorageCapabilities.IdempotencyKeys);
        using var response = await PostAsync(new string('k', 300), """{"records":[{"value":1}]}""");
        await Http.AssertProblemAsync(response, HttpStatusCode.BadRequest, "invalid_idempotency_key");
    }
}
