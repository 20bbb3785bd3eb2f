using System.Globalization;

namespace Gateway.Bench.SseLoad;

/// <summary>A process's resident memory and CPU time, from /proc (Linux).</summary>
internal static class ProcStats
{
    /// <summary>USER_HZ, the unit of utime/stime in /proc/P/stat: 100 on Linux for every common architecture.</summary>
    public const double ClockTicksPerSecond = 100;

    /// <summary>VmRSS in KB, or -1 if the process is gone.</summary>
    public static long RssKb(int pid)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }
        return -1;
    }

    /// <summary>utime + stime in clock ticks, or -1 if the process is gone.</summary>
    public static long CpuTicks(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // "pid (comm) state ppid ..." - comm may hold spaces; fields after it start at field 3 (state).
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }
}
