using Gateway.Server.Hosting;

namespace Gateway.Server.Tests.Hosting;

/// <summary>
/// The server runs socket completions inline on the runtime's socket threads unless its operator says otherwise. Seen
/// from outside the process: with completions inline the runtime makes one socket thread per CPU, without them one
/// for up to 30 CPUs (System.Net.Sockets' <c>SocketAsyncEngine</c>). The server is told it has two CPUs.
/// </summary>
public sealed class SocketCompletionTests : IDisposable
{
    private const string SocketThreadName = ".NET Sockets";

    private readonly TempDirectory _dataDirectory = new("gateway-socket-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [Theory]
    [InlineData(null, 2)]
    [InlineData("1", 2)]
    [InlineData("0", 1)]
    public async Task Socket_completions_run_inline_unless_the_operator_turns_them_off(string? setting, int socketThreads)
    {
        var environment = new Dictionary<string, string?>
        {
            ["DOTNET_PROCESSOR_COUNT"] = "2",
            [GatewayHosting.InlineSocketCompletions] = setting,
        };
        await using var server = await ServerProcess.StartAsync(_dataDirectory.Path, environment);

        await Http.CreateTopicAsync(server.Client, "inline", 1);
        await Http.ProduceAsync(server.Client, "inline", """[{"value":"v"}]""", "?acks=disk");
        var fetched = Http.Records(await Http.GetJsonAsync(server.Client, "/v1/topics/inline/partitions/0/records?offset=0"));
        Assert.Equal("v", (string?)Assert.Single(fetched)!["value"]);

        var threadNames = Directory.GetDirectories($"/proc/{server.Id}/task")
            .Select(task => File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n'));
        Assert.Equal(socketThreads, threadNames.Count(name => name == SocketThreadName));
    }
}
