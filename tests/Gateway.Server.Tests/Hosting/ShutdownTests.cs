using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Gateway.Server.Tests.Hosting;

/// <summary>
/// SIGTERM with a thousand open event streams and a thousand waiting long-polls: the long-polls are answered at
/// once, the streams end cleanly (group streams commit what they sent and leave), the process exits well before a
/// container runtime's 10 s grace, and every acknowledged record is there. (Kestrel closes idle connections and its
/// listener as it stops, so a late request over the wire rarely reaches the server: the in-process test below shows
/// its 503.)
/// Raw sockets, so that the test's own client costs little and sees exactly what the server sent.
/// </summary>
public sealed class ShutdownTests(ITestOutputHelper output) : IDisposable
{
    private const int Streams = 1000;
    private const int LongPolls = 1000;

    private readonly TempDirectory _dataDirectory = new("gateway-shutdown-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [Fact]
    public async Task Stopping_answers_long_polls_ends_streams_and_exits_promptly()
    {
        var server = await ServerProcess.StartAsync(_dataDirectory.Path, "--Streaming:CommitIntervalMs=600000");
        await using var _ = server;
        await Http.CreateTopicAsync(server.Client, "live", 4);
        for (int i = 0; i < 20; i++)
        {
            await Http.ProduceAsync(server.Client, "live", $$"""[{"key":"k{{i}}","value":{{i}}}]""", "?acks=disk");
        }
        var endpoint = (server.Address.Host, server.Address.Port);

        var streams = new List<Socket>();
        for (int i = 0; i < Streams; i++)
        {
            streams.Add(await SendAsync(endpoint, "/v1/topics/live/events?from=latest"));
        }
        // One member of a group, holding the four partitions: it is sent the 20 records, and commits them only as it ends
        // (the interval commit is set beyond the test).
        var groupStream = await SendAsync(endpoint, "/v1/groups/readers/events?topics=live&autoOffsetReset=earliest");
        var ends = (await Http.GetJsonAsync(server.Client, "/v1/topics/live"))["partitions"]!.AsArray().Select(p => (long)p!["endOffset"]!).ToArray();
        var polls = new List<Socket>();
        for (int i = 0; i < LongPolls; i++)
        {
            polls.Add(await SendAsync(endpoint, $"/v1/topics/live/partitions/{i % 4}/records?offset={ends[i % 4]}&waitMs=60000"));
        }
        foreach (var stream in streams)
        {
            await ReadUntilAsync(stream, "\r\n\r\n");
        }
        await ReadUntilAsync(groupStream, "event: record", count: 20);
        // Every long-poll is really waiting in the server, not still on its way in (one arriving after the stop is 503).
        await WaitForMetricAsync(server, "gateway_waiting_fetches", LongPolls);

        var clock = Stopwatch.StartNew();
        await server.StopAsync();
        clock.Stop();
        output.WriteLine($"stopped in {clock.Elapsed.TotalMilliseconds:F0} ms with {Streams} streams, 1 group stream and {LongPolls} long-polls open");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the server took {clock.Elapsed.TotalSeconds:F1} s to stop");

        foreach (var poll in polls)
        {
            string answer = await ReadToEndAsync(poll);
            Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
            Assert.Contains("\"records\":[]", answer, StringComparison.Ordinal);
        }
        foreach (var stream in streams.Append(groupStream))
        {
            // A clean end of a chunked response: the last chunk, not a reset connection.
            Assert.EndsWith("0\r\n\r\n", await ReadToEndAsync(stream), StringComparison.Ordinal);
        }

        await using var restarted = await ServerProcess.StartAsync(_dataDirectory.Path);
        long total = 0;
        for (int p = 0; p < 4; p++)
        {
            total += Http.Records(await Http.GetJsonAsync(restarted.Client, $"/v1/topics/live/partitions/{p}/records?offset=0")).Count;
        }
        Assert.Equal(20, total);
        var group = await Http.GetJsonAsync(restarted.Client, "/v1/groups/readers");
        Assert.Empty(group["members"]!.AsArray());
        Assert.Equal(20, group["offsets"]!.AsArray().Sum(o => (long?)o!["committedOffset"] ?? 0));
    }

    private static async Task WaitForMetricAsync(ServerProcess server, string name, double value)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string text = "";
        while (DateTime.UtcNow < deadline)
        {
            text = await server.Client.GetStringAsync("/metrics");
            if (text.Split('\n').Any(line => line.StartsWith(name + " ", StringComparison.Ordinal) && double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture) >= value))
            {
                return;
            }
            await Task.Delay(50);
        }
        Assert.Fail($"{name} never reached {value}:\n{string.Join('\n', text.Split('\n').Where(l => l.StartsWith(name, StringComparison.Ordinal)))}");
    }

    private static async Task<Socket> SendAsync((string Host, int Port) endpoint, string path)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint.Host, endpoint.Port);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        return socket;
    }

    /// <summary>Waits until what the socket received holds <paramref name="marker"/> <paramref name="count"/> times, without consuming it.</summary>
    private static async Task ReadUntilAsync(Socket socket, string marker, int count = 1)
    {
        var buffer = new byte[1 << 16];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            int read = await socket.ReceiveAsync(buffer, SocketFlags.Peek, timeout.Token);
            Assert.True(read > 0, $"the connection closed before '{marker.Trim()}'");
            // Peeked, not consumed: ReadToEndAsync reads it all again from the start.
            string seen = Encoding.UTF8.GetString(buffer, 0, read);
            if (seen.Split(marker).Length - 1 >= count)
            {
                return;
            }
            await Task.Delay(20, timeout.Token);
        }
    }

    private static async Task<string> ReadToEndAsync(Socket socket)
    {
        var text = new StringBuilder();
        var buffer = new byte[16384];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                text.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
        }
        catch (SocketException)
        {
            // Reset after a clean end still counts as what was received.
        }
        finally
        {
            socket.Dispose();
        }
        return text.ToString();
    }
}

/// <summary>
/// What a request meets once the server is stopping (in process, where the stop can be signalled and requests still
/// sent): a waiting long-poll answers at once, and a new request is 503 <c>shutting_down</c> with <c>Retry-After</c>.
/// A hosted service of the test holds the host's stop open meanwhile, as a slow drain would, so that the in-process
/// server is still there to be asked.
/// </summary>
public sealed class StoppingRequestTests : IAsyncLifetime
{
    private readonly GatewayFactory _factory = new();
    private readonly StopHold _hold = new();
    private Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactory<Program> _held = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _held = _factory.WithWebHostBuilder(builder => builder.ConfigureServices(services =>
            services.AddSingleton<Microsoft.Extensions.Hosting.IHostedService>(_hold)));
        _client = _held.CreateClient();
        await Http.CreateTopicAsync(_client, "t", 1);
    }

    public async Task DisposeAsync()
    {
        _hold.Release();
        await _held.DisposeAsync();
        await _factory.DisposeAsync();
    }

    [Fact]
    public async Task Long_polls_answer_and_new_requests_get_503_once_stopping()
    {
        var poll = _client.GetAsync("/v1/topics/t/partitions/0/records?offset=0&waitMs=60000");
        await Task.Delay(200);
        Assert.False(poll.IsCompleted, "the long-poll answered before anything was appended");

        var lifetime = _held.Services.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>();
        lifetime.StopApplication();
        using var answered = await poll.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(System.Net.HttpStatusCode.OK, answered.StatusCode);
        Assert.Empty(Http.Records(await Http.AssertJsonAsync(answered)));

        await _hold.Stopping.WaitAsync(TimeSpan.FromSeconds(10));
        using var late = await _client.GetAsync("/v1/topics");
        await Http.AssertProblemAsync(late, System.Net.HttpStatusCode.ServiceUnavailable, "shutting_down");
        Assert.Equal("1", late.Headers.RetryAfter?.ToString());
    }

    /// <summary>A hosted service whose stop waits for the test: the host stays up, stopping, until released.</summary>
    private sealed class StopHold : Microsoft.Extensions.Hosting.IHostedService
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _stopping = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Stopping => _stopping.Task;

        public void Release() => _released.TrySetResult();

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken)
        {
            _stopping.TrySetResult();
            return _released.Task.WaitAsync(cancellationToken);
        }
    }
}
