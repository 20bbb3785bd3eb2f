using System.Diagnostics;
using System.Net;
using System.Text;

namespace Gateway.Server.Tests.Hosting;

/// <summary>
/// The server listens while its storage opens: liveness answers at once, readiness says not ready, and requests wait
/// for the storage and are then served. A real process whose opening is held: the topic's <c>topic.json</c> is a
/// named pipe, which the store's start reads (and waits on) until the test writes the real file's contents into it.
/// </summary>
public sealed class StartupTests : IDisposable
{
    private readonly TempDirectory _dataDirectory = new("gateway-startup-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [Fact]
    public async Task Requests_wait_while_the_storage_opens_and_probes_answer_at_once()
    {
        await using (var first = await ServerProcess.StartAsync(_dataDirectory.Path))
        {
            await Http.CreateTopicAsync(first.Client, "held", 1);
            await Http.ProduceAsync(first.Client, "held", """[{"value":"before"}]""", "?acks=disk");
            await first.StopAsync();
        }
        string metadataPath = Path.Combine(_dataDirectory.Path, "topics", "held", "topic.json");
        byte[] metadata = await File.ReadAllBytesAsync(metadataPath);
        File.Delete(metadataPath);
        await MakeFifoAsync(metadataPath);

        await using var server = await ServerProcess.LaunchAsync(_dataDirectory.Path);
        using (var live = await server.Client.GetAsync("/health/live"))
        {
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }
        using (var ready = await server.Client.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("not open", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        var produce = server.Client.PostAsync(
            "/v1/topics/held/records?acks=disk", new StringContent("""{"records":[{"value":"during"}]}""", Encoding.UTF8, "application/json"));
        var topics = server.Client.GetAsync("/v1/topics");
        await Task.Delay(500);
        Assert.False(produce.IsCompleted, "a produce was answered before the storage was open");
        Assert.False(topics.IsCompleted, "the topic list was answered before the storage was open");

        // The store's start has the pipe open for reading; writing the file's contents lets it go on.
        await File.WriteAllBytesAsync(metadataPath, metadata).WaitAsync(TimeSpan.FromSeconds(30));
        using (var produced = await produce.WaitAsync(TimeSpan.FromSeconds(30)))
        {
            var body = await Http.AssertJsonAsync(produced);
            Assert.Equal(1, (long)body["offsets"]![0]!["offset"]!);
        }
        using (var listed = await topics.WaitAsync(TimeSpan.FromSeconds(30)))
        {
            var body = await Http.AssertJsonAsync(listed);
            Assert.Equal("held", (string)body["topics"]![0]!["name"]!);
        }
        using (var ready = await server.Client.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }
    }

    private static async Task MakeFifoAsync(string path)
    {
        using var mkfifo = Process.Start("mkfifo", [path]) ?? throw new InvalidOperationException("mkfifo did not start");
        await mkfifo.WaitForExitAsync();
        Assert.Equal(0, mkfifo.ExitCode);
    }
}
