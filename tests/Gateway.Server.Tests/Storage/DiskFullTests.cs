using System.Diagnostics;
using System.Net;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// A data directory on a small tmpfs that fills up: produce answers 507 and acknowledges nothing it could not
/// keep, reads go on, and produce works again once space is freed, without a restart. Needs root to mount;
/// skipped with a message elsewhere.
/// </summary>
public sealed class DiskFullTests : IDisposable
{
    private readonly TempDirectory _mountDirectory = new("gateway-disk-full", create: false);
    private bool _mounted;

    public void Dispose()
    {
        if (_mounted)
        {
            Run("umount", "-l", _mountDirectory.Path);
        }
        _mountDirectory.Dispose();
    }

    private static int Run(string file, params string[] args)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit();
            return process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return -1;
        }
    }

    [SkippableFact]
    public async Task A_full_disk_refuses_produce_with_507_keeps_reads_and_recovers_when_space_returns()
    {
        GatewayFactory.RequireEmbedded("data directory on a small disk");
        Directory.CreateDirectory(_mountDirectory.Path);
        _mounted = Run("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", _mountDirectory.Path) == 0;
        Skip.IfNot(_mounted, "Cannot mount a tmpfs here (needs root): the disk-full test did not run.");

        string filler = Path.Combine(_mountDirectory.Path, "filler");
        await File.WriteAllBytesAsync(filler, new byte[8 * 1024 * 1024]);
        await using var server = await ServerProcess.StartAsync(
            Path.Combine(_mountDirectory.Path, "data"),
            "--Storage:MinFreeDiskBytes=4194304", "--Storage:PageSizeBits=20", "--Storage:MemorySizeBits=21", "--Storage:SegmentSizeBits=22", "--Storage:TopicDefaults:MaxRecordBytes=262144");
        await Http.CreateTopicAsync(server.Client, "full", 1);

        string value = new('d', 64 * 1024);
        var acknowledged = new List<long>();
        HttpResponseMessage? refused = null;
        for (int i = 0; i < 1000 && refused is null; i++)
        {
            var response = await server.Client.PostAsync("/v1/topics/full/records", new StringContent(value));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                acknowledged.Add((long)(await Http.AssertJsonAsync(response))["offsets"]![0]!["offset"]!);
                response.Dispose();
            }
            else
            {
                refused = response;
            }
        }
        Assert.NotNull(refused);
        using (refused)
        {
            await Http.AssertProblemAsync(refused!, HttpStatusCode.InsufficientStorage, "insufficient_storage");
        }
        Assert.True(acknowledged.Count > 10, $"only {acknowledged.Count} records fit");

        // Every acknowledged record is there and reads keep working.
        long next = 0;
        int seen = 0;
        while (true)
        {
            var page = Http.Records(await Http.GetJsonAsync(server.Client, $"/v1/topics/full/partitions/0/records?offset={next}&maxBytes=16000000"));
            if (page.Count == 0)
            {
                break;
            }
            seen += page.Count;
            next = (long)page[^1]!["offset"]! + 1;
        }
        Assert.Equal(acknowledged.Count, seen);
        using (var ready = await server.Client.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        // Space comes back: produce works again, no restart.
        File.Delete(filler);
        await Task.Delay(300);
        using var again = await server.Client.PostAsync("/v1/topics/full/records", new StringContent("room again"));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(acknowledged.Count, (long)(await Http.AssertJsonAsync(again))["offsets"]![0]!["offset"]!);
    }
}
