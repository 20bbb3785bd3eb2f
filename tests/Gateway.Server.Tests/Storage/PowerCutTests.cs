using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// Power cuts, not only kill -9: the server runs on powerfs (bench/chaos/powerfs), a file system that throws away
/// whatever was not synced — file data and directory entries alike — when its power is cut. Under acks=disk load
/// the server is killed and the power cut at once, a few times (one cut tearing the last unsynced writes); after each
/// restart every acknowledged record is at its offset, offsets are dense, and the topic is there. Without the
/// directory syncs the first cut took the whole topic away. Skipped where powerfs cannot mount (needs root,
/// /dev/fuse and Debian's python3-fusepy, which .ci/run installs).
/// </summary>
public sealed class PowerCutTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory _workDirectory = new("gateway-powercut-tests", create: false);
    private Process? _fs;

    private string Mount => Path.Combine(_workDirectory.Path, "mnt");

    public void Dispose()
    {
        Unmount();
        _workDirectory.Dispose();
    }

    [SkippableFact]
    public async Task Every_acknowledged_record_survives_power_cuts()
    {
        GatewayFactory.RequireEmbedded("data directory on powerfs");
        Skip.IfNot(await MountAsync(), "powerfs cannot mount here (root, /dev/fuse and python3-fusepy are needed; .ci/run installs them)");
        string data = Path.Combine(Mount, "data");
        var acknowledged = new ConcurrentDictionary<(int Partition, long Offset), string>();
        const int Partitions = 3;
        const int Cycles = 4;
        for (int cycle = 0; cycle < Cycles; cycle++)
        {
            await using (var server = await ServerProcess.StartAsync(data, "--Serilog:MinimumLevel:Default=Warning"))
            {
                if (cycle == 0)
                {
                    await Http.CreateTopicAsync(server.Client, "t", Partitions);
                }
                await AssertAllThereAsync(server.Client, acknowledged, Partitions);
                using var load = new CancellationTokenSource(TimeSpan.FromMilliseconds(1500));
                var workers = Enumerable.Range(0, 4).Select(w => ProduceAsync(server.Client, $"c{cycle}w{w}", acknowledged, load.Token)).ToArray();
                await Task.WhenAll(workers);
                // The power goes: the process dies and the unsynced data with it, at the same instant.
                server.Kill();
            }
            await File.WriteAllTextAsync(Path.Combine(Mount, ".powerfs"), cycle % 2 == 1 ? "cut torn" : "cut");
            output.WriteLine($"cycle {cycle}: {acknowledged.Count} acknowledged so far; powerfs {await File.ReadAllTextAsync(Path.Combine(Mount, ".powerfs"))}");
        }
        await using var last = await ServerProcess.StartAsync(data, "--Serilog:MinimumLevel:Default=Warning");
        await AssertAllThereAsync(last.Client, acknowledged, Partitions);
        Assert.True(acknowledged.Count > 40, $"only {acknowledged.Count} records were acknowledged");
    }

    private static async Task ProduceAsync(HttpClient client, string prefix, ConcurrentDictionary<(int, long), string> acknowledged, CancellationToken stop)
    {
        for (int n = 0; !stop.IsCancellationRequested; n++)
        {
            string value = $"{prefix}-{n}";
            try
            {
                using var response = await client.PostAsync("/v1/topics/t/records?acks=disk", Http.Json($$"""{"records":[{"key":"{{value}}","value":"{{value}}"}]}"""), stop);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    var offset = JsonNode.Parse(await response.Content.ReadAsStringAsync(stop))!["offsets"]![0]!;
                    acknowledged[((int)offset["partition"]!, (long)offset["offset"]!)] = value;
                }
            }
            catch (OperationCanceledException)
            {
                return; // an answer that never came was never acknowledged
            }
        }
    }

    private static async Task AssertAllThereAsync(HttpClient client, ConcurrentDictionary<(int Partition, long Offset), string> acknowledged, int partitions)
    {
        for (int p = 0; p < partitions; p++)
        {
            var stored = new List<(long Offset, string Value)>();
            long next = 0;
            while (true)
            {
                var page = await Http.GetJsonAsync(client, $"/v1/topics/t/partitions/{p}/records?offset={next}&limit=10000");
                var records = Http.Records(page);
                stored.AddRange(records.Select(r => ((long)r!["offset"]!, (string)r["value"]!)));
                next = (long)page["nextOffset"]!;
                if (records.Count == 0 || next >= (long)page["endOffset"]!)
                {
                    break;
                }
            }
            Assert.Equal(Enumerable.Range(0, stored.Count).Select(i => (long)i), stored.Select(s => s.Offset)); // dense from 0
            var byOffset = stored.ToDictionary(s => s.Offset, s => s.Value);
            foreach (var ((partition, offset), value) in acknowledged.Where(a => a.Key.Partition == p))
            {
                Assert.True(byOffset.TryGetValue(offset, out string? found) && found == value, $"acknowledged {value} at {partition}/{offset} is {found ?? "missing"}");
            }
        }
    }

    private async Task<bool> MountAsync()
    {
        string script = Path.Combine(Repository.Root(), "bench", "chaos", "powerfs", "powerfs.py");
        if (!OperatingSystem.IsLinux() || !File.Exists("/dev/fuse") && !Directory.Exists("/dev") || !File.Exists("/usr/bin/python3") || Environment.UserName != "root")
        {
            return false;
        }
        Directory.CreateDirectory(Path.Combine(_workDirectory.Path, "backing"));
        Directory.CreateDirectory(Mount);
        // Its output goes to a file: a pipe nobody read would fill and stall the file system.
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (string arg in new[] { "-c", "exec /usr/bin/python3 \"$0\" \"$1\" \"$2\" >\"$3\" 2>&1", script, Path.Combine(_workDirectory.Path, "backing"), Mount, Path.Combine(_workDirectory.Path, "powerfs.log") })
        {
            start.ArgumentList.Add(arg);
        }
        _fs = Process.Start(start)!;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (_fs.HasExited)
            {
                return false;
            }
            if (File.ReadAllText("/proc/mounts").Contains($" {Mount} ", StringComparison.Ordinal))
            {
                return true;
            }
            await Task.Delay(50);
        }
        return false;
    }

    private void Unmount()
    {
        if (_fs is null)
        {
            return;
        }
        using (var umount = Process.Start("umount", ["-l", Mount]))
        {
            umount.WaitForExit();
        }
        if (!_fs.WaitForExit(10_000))
        {
            _fs.Kill();
        }
        _fs.Dispose();
        _fs = null;
    }
}
