using System.Diagnostics;

namespace Gateway.Server.Tests.Observability;

/// <summary>The container health check: <c>Gateway.Server --health-check URL</c> exits 0 only when the server is ready.</summary>
public sealed class HealthProbeTests
{
    private static async Task<int> ProbeAsync(string url)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Gateway.Server.dll"));
        start.ArgumentList.Add("--health-check");
        start.ArgumentList.Add(url);
        using var probe = Process.Start(start)!;
        await probe.WaitForExitAsync();
        return probe.ExitCode;
    }

    [Fact]
    public async Task The_probe_passes_against_a_ready_server_and_fails_without_one()
    {
        using var temp = new TempDirectory("gateway-probe-tests", create: false);
        string data = temp.Path;
        string url;
        await using (var server = await ServerProcess.StartAsync(data))
        {
            url = new Uri(server.Address, "/health/ready").ToString();
            Assert.Equal(0, await ProbeAsync(url));
        }
        Assert.Equal(1, await ProbeAsync(url));
    }
}
