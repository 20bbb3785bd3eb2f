using System.Net;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// A groups database that cannot be opened (its header damaged, as a power cut without syncs left it in
/// bench/chaos/run.sh --power-cut) refuses the start with the reason and exit code 1 — not an unhandled exception and
/// a core dump (exit 134, as before) — and the log is untouched: with the groups directory moved aside, the server
/// starts and every record is there.
/// </summary>
public sealed class DamagedGroupsDatabaseTests : IDisposable
{
    private readonly TempDirectory _dataDirectory = new("gateway-groups-damage-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [SkippableFact]
    public async Task A_damaged_groups_database_refuses_the_start_plainly_and_leaves_the_log_intact()
    {
        GatewayFactory.RequireEmbedded("groups database file");
        await using (var server = await ServerProcess.StartAsync(_dataDirectory.Path))
        {
            await Http.CreateTopicAsync(server.Client, "kept", 1);
            for (int i = 0; i < 10; i++)
            {
                await Http.ProduceAsync(server.Client, "kept", $$"""[{"value":{{i}}}]""", "?acks=disk");
            }
            await Http.PostProblemlessAsync(server.Client, "/v1/groups/g/members", """{"topics":["kept"],"autoOffsetReset":"earliest"}""");
        }
        string database = Path.Combine(_dataDirectory.Path, "groups", "groups.db");
        await using (var file = new FileStream(database, FileMode.Open, FileAccess.Write))
        {
            await file.WriteAsync(new byte[512]); // the header page's start: LiteDB's magic gone
        }

        var (exitCode, output) = await ServerProcess.RunToExitAsync(_dataDirectory.Path, new Dictionary<string, string?>(), defaultUrls: true);
        Assert.Equal(1, exitCode);
        Assert.Contains("Refusing to start: The consumer groups' database", output, StringComparison.Ordinal);
        Assert.Contains("move the groups directory aside", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);

        Directory.Move(Path.Combine(_dataDirectory.Path, "groups"), Path.Combine(_dataDirectory.Path, "groups.damaged"));
        await using var restarted = await ServerProcess.StartAsync(_dataDirectory.Path);
        var fetch = await Http.GetJsonAsync(restarted.Client, "/v1/topics/kept/partitions/0/records?offset=0");
        Assert.Equal(10, Http.Records(fetch).Count);
        using var groups = await restarted.Client.GetAsync("/v1/groups/g");
        Assert.Equal(HttpStatusCode.NotFound, groups.StatusCode);
    }
}
