using System.Diagnostics;
using System.Text.Json;

namespace Gateway.Chaos;

/// <summary>
/// powerfs (bench/chaos/powerfs/powerfs.py) mounted for a run: a file system that throws away whatever was not synced
/// when its power is cut. The server's data directory lives on it in the power-cut mode; <see cref="CutAsync"/> is the
/// cut, <see cref="CountersAsync"/> what powerfs counted (syncs, writes lost, O_DIRECT opens refused, ...).
/// </summary>
internal sealed class PowerFs : IDisposable
{
    private readonly Process _process;
    private bool _disposed;

    private PowerFs(Process process, string mount)
    {
        _process = process;
        Mount = mount;
    }

    public string Mount { get; }

    private string Control => Path.Combine(Mount, ".powerfs");

    /// <summary>Mounts powerfs over <c>{work}/powerfs-backing</c> at <c>{work}/powerfs</c>; its output goes to <c>{work}/powerfs.log</c>.</summary>
    public static async Task<PowerFs> MountAsync(string script, string work, int seed, IReadOnlyList<string> ignoreSync)
    {
        string backing = Path.Combine(work, "powerfs-backing");
        string mount = Path.Combine(work, "powerfs");
        Directory.CreateDirectory(backing);
        Directory.CreateDirectory(mount);
        // Its output goes to a file: a pipe nobody read would fill up and stall every file system operation.
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        var arguments = new List<string> { "-c", "log=$1; shift; exec /usr/bin/python3 \"$@\" >\"$log\" 2>&1", "powerfs", Path.Combine(work, "powerfs.log"), script, backing, mount, "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        foreach (string what in ignoreSync)
        {
            arguments.AddRange(["--ignore-sync", what]);
        }
        arguments.ForEach(start.ArgumentList.Add);
        var process = Process.Start(start) ?? throw new ChaosFailure("powerfs did not start");
        var fs = new PowerFs(process, mount);
        var clock = Stopwatch.StartNew();
        while (!File.ReadAllText("/proc/mounts").Contains($" {mount} ", StringComparison.Ordinal))
        {
            if (process.HasExited || clock.Elapsed > TimeSpan.FromSeconds(20))
            {
                fs.Dispose();
                string output = File.Exists(Path.Combine(work, "powerfs.log")) ? await File.ReadAllTextAsync(Path.Combine(work, "powerfs.log")) : "";
                throw new ChaosFailure($"powerfs did not mount at {mount} (it needs root, /dev/fuse, fuse3 and python3-fusepy): {output.Trim()}");
            }
            await Task.Delay(50);
        }
        return fs;
    }

    /// <summary>The power cut: everything not synced is gone (<paramref name="torn"/>: a random prefix of each file's last unsynced write stays).</summary>
    public Task CutAsync(bool torn) => File.WriteAllTextAsync(Control, torn ? "cut torn" : "cut");

    public async Task<Dictionary<string, long>> CountersAsync()
    {
        string json = await File.ReadAllTextAsync(Control);
        return JsonSerializer.Deserialize<Dictionary<string, long>>(json) ?? [];
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        using (var umount = Process.Start("umount", ["-l", Mount]))
        {
            umount.WaitForExit();
        }
        if (!_process.WaitForExit(10_000))
        {
            _process.Kill();
        }
        _process.Dispose();
    }
}
