using System.Diagnostics;
using System.Net;
using System.Text;

namespace Gateway.Server.Tests;

/// <summary>The real server as a child process on a free loopback port, so a test can kill it like a crash would.</summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServerProcess(Process process) => _process = process;

    private bool _disposed;

    /// <summary>Where the server listens: the port the server itself was given by the system, read from its log.</summary>
    public Uri Address { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>The server's process id.</summary>
    public int Id => _process.Id;

    public static Task<ServerProcess> StartAsync(string dataDirectory, params string[] settings) =>
        StartAsync(dataDirectory, new Dictionary<string, string?>(), settings);

    /// <summary>Starts the server with these environment variables set (or, where the value is null, removed).</summary>
    public static async Task<ServerProcess> StartAsync(string dataDirectory, IReadOnlyDictionary<string, string?> environment, params string[] settings)
    {
        var server = await LaunchAsync(dataDirectory, environment, settings);
        await server.WaitUntilReadyAsync();
        return server;
    }

    /// <summary>Starts the server and returns once it listens, which it does before its storage is open.</summary>
    public static Task<ServerProcess> LaunchAsync(string dataDirectory, params string[] settings) =>
        LaunchAsync(dataDirectory, new Dictionary<string, string?>(), settings);

    private static async Task<ServerProcess> LaunchAsync(string dataDirectory, IReadOnlyDictionary<string, string?> environment, string[] settings)
    {
        var server = Spawn(dataDirectory, environment, settings, defaultUrls: true);
        await server.WaitUntilListeningAsync();
        return server;
    }

    /// <summary>
    /// Runs the server until it exits by itself (a refusal to start or to serve), within 60 s: its exit code and output.
    /// Without <paramref name="defaultUrls"/> no <c>--urls</c> is given, so that the environment's addresses apply.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(
        string dataDirectory, IReadOnlyDictionary<string, string?> environment, bool defaultUrls, params string[] settings)
    {
        await using var server = Spawn(dataDirectory, environment, settings, defaultUrls);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await server._process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The server did not exit by itself:\n{server.Output}");
        }
        return (server._process.ExitCode, server.Output);
    }

    /// <summary>Starts the server with these environment variables and settings and returns once it listens.</summary>
    public static async Task<ServerProcess> LaunchAsync(string dataDirectory, IReadOnlyDictionary<string, string?> environment, bool defaultUrls, params string[] settings)
    {
        var server = Spawn(dataDirectory, environment, settings, defaultUrls);
        await server.WaitUntilListeningAsync();
        return server;
    }

    private static ServerProcess Spawn(string dataDirectory, IReadOnlyDictionary<string, string?> environment, string[] settings, bool defaultUrls)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Gateway.Server.dll"));
        // Port 0: the server binds a free port itself. A port picked here and handed over could be taken meanwhile
        // by another test's server, and this test would then talk to that one.
        if (defaultUrls)
        {
            start.ArgumentList.Add("--urls=http://127.0.0.1:0");
        }
        // The embedded backend unless the test names another (later settings win): a process of its own is what the
        // embedded backend's tests (crashes, restarts, files) need; GATEWAY_TEST_BACKEND is for the in-process suite.
        start.ArgumentList.Add("--Storage:Backend=embedded");
        start.ArgumentList.Add($"--Storage:DataDirectory={dataDirectory}");
        start.ArgumentList.Add("--Serilog:MinimumLevel:Default=Warning");
        start.ArgumentList.Add("--Serilog:MinimumLevel:Override:Microsoft.Hosting.Lifetime=Information"); // "Now listening on: …"
        if (!settings.Any(s => s.StartsWith("--KafkaProtocol:Listen=", StringComparison.Ordinal)))
        {
            // Off unless a test asks for it: the default (localhost:9092) is one port for every server of the suite.
            start.ArgumentList.Add("--KafkaProtocol:Listen=");
        }
        foreach (string setting in settings)
        {
            start.ArgumentList.Add(setting);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var server = new ServerProcess(process);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>SIGKILL: no shutdown code runs, exactly like a crash or power cut of the process.</summary>
    public void Kill()
    {
        // The server itself first: walking the process tree takes tens of milliseconds, during which requests in
        // flight would still be answered and the kill would not land mid-request.
        _process.Kill();
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGSTOP: the process stands still (as in a long GC pause or a frozen VM) until <see cref="ResumeAsync"/>.</summary>
    public Task PauseAsync() => SignalAsync("-STOP");

    /// <summary>SIGCONT after <see cref="PauseAsync"/>.</summary>
    public Task ResumeAsync() => SignalAsync("-CONT");

    /// <summary>SIGTERM: the host's graceful shutdown.</summary>
    public async Task StopAsync()
    {
        await SignalAsync("-TERM");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(timeout.Token);
    }

    private async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", [signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Client?.Dispose();
        if (!_process.HasExited)
        {
            Kill();
        }
        _process.Dispose();
        await Task.CompletedTask;
    }

    private async Task WaitUntilListeningAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            await ThrowIfExitedAsync();
            if (ListeningAddress(Output) is { } address)
            {
                Address = address;
                Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
                return;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"The server did not listen:\n{Output}");
    }

    private async Task ThrowIfExitedAsync()
    {
        if (_process.HasExited)
        {
            // Let the output readers catch up so the message shows why.
            await _process.WaitForExitAsync();
            throw new InvalidOperationException($"The server exited with {_process.ExitCode}:\n{Output}");
        }
    }

    private async Task WaitUntilReadyAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            await ThrowIfExitedAsync();
            try
            {
                using var response = await Client.GetAsync("/health/ready");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"The server did not become ready:\n{Output}");
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static Uri? ListeningAddress(string output)
    {
        const string Marker = "Now listening on: ";
        int at = output.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }
        int start = at + Marker.Length;
        int end = output.IndexOfAny(['\r', '\n', ' '], start);
        return end < 0 ? null : new Uri(output[start..end]);
    }
}
