using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Gateway.Server.Tests.Kafka;

/// <summary>kafkajs 2.2.4 (npm), a client that never uses flexible versions, against the listener: admin, producer, a consumer group and its commits (tests/kafkajs/flow.mjs).</summary>
public sealed class KafkajsTests : IAsyncLifetime
{
    private KafkaServer _server = null!;

    public async Task InitializeAsync() => _server = await KafkaServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [SkippableFact]
    public async Task Kafkajs_creates_a_topic_produces_consumes_as_a_group_commits_and_deletes_it()
    {
        string flow = Path.Combine(Repository.Root(), "tests", "kafkajs");
        Skip.IfNot(Directory.Exists(Path.Combine(flow, "node_modules", "kafkajs")), "kafkajs is not installed (.ci/run runs npm ci in tests/kafkajs)");
        var start = new ProcessStartInfo("node") { WorkingDirectory = flow, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("flow.mjs");
        start.ArgumentList.Add(_server.Bootstrap);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"{await stdout}\n{await stderr}");

        var result = JsonNode.Parse((await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Last())!;
        Assert.True((bool)result["created"]!);
        Assert.Equal(2, (int)result["partitions"]!);
        Assert.All(result["sent"]!.AsArray(), s => Assert.Equal(0, (int)s!["error"]!));
        Assert.Equal(Enumerable.Range(0, 10), result["seen"]!.AsArray().Select(s => (int)s!["n"]!));
        Assert.Equal("k3", (string?)result["seen"]![3]!["key"]);
        Assert.Equal("3", (string?)result["seen"]![3]!["h"]);
        Assert.Equal(["5", "5"], result["committed"]!.AsArray().Select(c => (string?)c!["offset"]));
        Assert.Contains("js-readers", result["groups"]!.AsArray().Select(g => (string?)g));
        using var gone = await _server.Http.GetAsync("/v1/topics/js");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, gone.StatusCode);
    }
}
