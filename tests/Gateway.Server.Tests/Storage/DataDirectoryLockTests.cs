using System.Net;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// One data directory, one server: a second real process started on a directory a running server holds exits with 2
/// before it opens anything, naming the directory and the holder's process id, and the first server's acknowledged
/// records and group commits are all there after a restart.
/// </summary>
public sealed class DataDirectoryLockTests : IDisposable
{
    private readonly TempDirectory _dataDirectory = new("gateway-lock-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [SkippableFact]
    public async Task A_second_server_on_the_same_directory_refuses_to_start_and_nothing_is_lost()
    {
        GatewayFactory.RequireEmbedded("data directory lock");
        await using (var first = await ServerProcess.StartAsync(_dataDirectory.Path))
        {
            await Http.CreateTopicAsync(first.Client, "kept", 1);
            for (int i = 0; i < 30; i++)
            {
                await Http.ProduceAsync(first.Client, "kept", $$"""[{"value":{{i}}}]""", "?acks=disk");
            }
            var joined = await Http.PostProblemlessAsync(first.Client, "/v1/groups/g/members", """{"topics":["kept"],"autoOffsetReset":"earliest"}""");
            string member = (string)joined["memberId"]!;
            long generation = (long)joined["generation"]!;
            using (var commit = await first.Client.PostAsync(
                $"/v1/groups/g/members/{member}/offsets", Http.Json($$"""{"generation":{{generation}},"offsets":[{"topic":"kept","partition":0,"offset":17}]}""")))
            {
                Assert.Equal(HttpStatusCode.OK, commit.StatusCode);
            }

            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ServerProcess.LaunchAsync(_dataDirectory.Path));
            Assert.Contains("exited with 2", refused.Message, StringComparison.Ordinal);
            Assert.Contains(_dataDirectory.Path, refused.Message, StringComparison.Ordinal);
            Assert.Contains($"process {first.Id}", refused.Message, StringComparison.Ordinal);

            // The first server still serves, and its storage was not touched.
            var fetched = await Http.GetJsonAsync(first.Client, "/v1/topics/kept/partitions/0/records?offset=0&limit=100");
            Assert.Equal(30, Http.Records(fetched).Count);
            await first.StopAsync();
        }

        await using var restarted = await ServerProcess.StartAsync(_dataDirectory.Path);
        var again = await Http.GetJsonAsync(restarted.Client, "/v1/topics/kept/partitions/0/records?offset=0&limit=100");
        Assert.Equal(Enumerable.Range(0, 30), Http.Records(again).Select(r => (int)r!["value"]!));
        var group = await Http.GetJsonAsync(restarted.Client, "/v1/groups/g");
        Assert.Equal(17, (long?)group["offsets"]![0]!["committedOffset"]);
    }
}
