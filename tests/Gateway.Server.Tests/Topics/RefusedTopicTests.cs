using System.Net;

namespace Gateway.Server.Tests.Topics;

/// <summary>
/// A topic whose stored settings are refused at start is kept whole — its files and the groups' committed offsets
/// for it — so that once the file is mended the groups resume where they were; and settings the API would refuse
/// cannot reach a topic.json through the server's topic defaults.
/// </summary>
public sealed class RefusedTopicTests : IDisposable
{
    private readonly TempDirectory _dataDirectory = new("gateway-refused-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [SkippableFact]
    public async Task A_refused_topic_keeps_its_group_offsets_until_its_file_is_mended()
    {
        GatewayFactory.RequireEmbedded("topic files");
        await using (var factory = new GatewayFactory(dataDirectory: _dataDirectory.Path))
        {
            var client = factory.CreateClient();
            await Http.CreateTopicAsync(client, "t", 1);
            await Http.ProduceAsync(client, "t", """[{"value":1},{"value":2}]""");
            var member = await Http.PostProblemlessAsync(client, "/v1/groups/g/members", """{"topics":["t"]}""");
            await Http.PostProblemlessAsync(
                client, $"/v1/groups/g/members/{(string)member["memberId"]!}/offsets", $$"""{"generation":{{(long)member["generation"]!}},"offsets":[{"topic":"t","partition":0,"offset":2}]}""");
        }
        string metadata = Path.Combine(_dataDirectory.Path, "topics", "t", "topic.json");
        string good = await File.ReadAllTextAsync(metadata);
        await File.WriteAllTextAsync(metadata, good.Replace("\"acks\": \"disk\"", "\"acks\": \"Disk\"", StringComparison.Ordinal));

        await using (var factory = new GatewayFactory(dataDirectory: _dataDirectory.Path))
        {
            var client = factory.CreateClient();
            var problem = await Http.GetProblemAsync(client, "/v1/topics/t", HttpStatusCode.InternalServerError, "log_corrupted");
            Assert.Contains("acks", (string?)problem["detail"], StringComparison.Ordinal);
            using var ready = await client.GetAsync("/health/ready");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("topic.json", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            await Http.PostProblemAsync(client, "/v1/topics", Http.Json("""{"name":"t"}"""), HttpStatusCode.Conflict, "topic_exists");
        }

        await File.WriteAllTextAsync(metadata, good);
        await using (var factory = new GatewayFactory(dataDirectory: _dataDirectory.Path))
        {
            var client = factory.CreateClient();
            var group = await Http.GetJsonAsync(client, "/v1/groups/g");
            Assert.Equal(2, (long?)group["offsets"]![0]!["committedOffset"]);
            Assert.Equal(2, Http.Records(await Http.GetJsonAsync(client, "/v1/topics/t/partitions/0/records?offset=0")).Count);
        }
    }

    [Theory]
    [InlineData("--Storage:TopicDefaults:RetentionMs=0", "RetentionMs")]
    [InlineData("--Storage:TopicDefaults:Acks=1", "Acks")]
    [InlineData("--Storage:TopicDefaults:RetentionBytes=-5", "RetentionBytes")]
    public async Task Topic_defaults_the_api_would_refuse_stop_the_server_from_starting(string setting, string key)
    {
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ServerProcess.LaunchAsync(_dataDirectory.Path, setting));
        Assert.Contains("exited with 2", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"TopicDefaults:{key}", refused.Message, StringComparison.Ordinal);
    }
}
