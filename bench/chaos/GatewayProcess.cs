using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Gateway.Chaos;

/// <summary>
/// The real server as a child process (<c>dotnet Gateway.Server.dll</c>) on a fixed loopback port, so that it can be
/// killed like a crash would (SIGKILL) and started again on the same data and address.
/// </summary>
internal sealed class GatewayProcess : IDisposable
{
    private static readonly HttpClient s_probe = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly Process _process;
    private bool _disposed;
    private string _lastBody = "";

    private GatewayProcess(Process process, Uri address)
    {
        _process = process;
        Address = address;
        Started = Stopwatch.StartNew();
    }

    public Uri Address { get; }

    public Stopwatch Started { get; }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static GatewayProcess Start(Options options, int port, string dataDirectory, ServerLog log)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(options.ServerDll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(options.ServerDll);
        start.ArgumentList.Add($"--urls=http://127.0.0.1:{port}");
        start.ArgumentList.Add($"--Storage:DataDirectory={dataDirectory}");
        start.ArgumentList.Add("--Serilog:MinimumLevel:Default=Warning");
        start.ArgumentList.Add("--KafkaProtocol:Listen="); // off unless the server arguments name one
        foreach (string arg in options.ServerArgs)
        {
            start.ArgumentList.Add(arg);
        }
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => log.Append(e.Data);
        process.ErrorDataReceived += (_, e) => log.Append(e.Data);
        // The clock starts before the process does: restart-to-ready includes starting the runtime.
        var server = new GatewayProcess(process, new Uri($"http://127.0.0.1:{port}"));
        if (!process.Start())
        {
            throw new InvalidOperationException("dotnet did not start");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>Polls /health/ready until 200; returns the time from process start. Throws when it exits or times out.</summary>
    public async Task<TimeSpan> WaitReadyAsync(TimeSpan timeout)
    {
        var status = await WaitAsync("/health/ready", timeout);
        return status == HttpStatusCode.OK
            ? Started.Elapsed
            : throw new ChaosFailure($"the server was not ready {timeout.TotalSeconds:0} s after its start (last /health/ready: {Describe(status)} {_lastBody})");
    }

    /// <summary>Polls <paramref name="path"/> every 20 ms until it answers 200 or the time is up; the last status, null if none.</summary>
    public async Task<HttpStatusCode?> WaitAsync(string path, TimeSpan timeout)
    {
        HttpStatusCode? last = null;
        while (Started.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                throw new ChaosFailure($"the server exited with code {_process.ExitCode} while starting");
            }
            try
            {
                using var response = await s_probe.GetAsync(new Uri(Address, path));
                last = response.StatusCode;
                _lastBody = await response.Content.ReadAsStringAsync();
                if (last == HttpStatusCode.OK)
                {
                    return last;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(20);
        }
        return last;
    }

    /// <summary>SIGKILL: no shutdown code runs, as in a crash.</summary>
    public void Kill()
    {
        // The server's own process first, at once: Kill(entireProcessTree: true) walks /proc for descendants before
        // it signals (50-90 ms here), time in which every request in flight gets its answer, so the kill would never
        // cut one off. The tree kill after it takes down any child process the server may have started.
        _process.Kill();
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGTERM: the host's graceful shutdown (commits everything appended). Returns how long it took.</summary>
    public async Task<TimeSpan> StopAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        using var wait = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new ChaosFailure($"the server did not stop within {timeout.TotalSeconds:0} s of SIGTERM (killed)");
        }
        return clock.Elapsed;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (!_process.HasExited)
        {
            Kill();
        }
        _process.Dispose();
    }

    private static string Describe(HttpStatusCode? status) => status is { } s ? $"{(int)s}" : "no answer";
}
