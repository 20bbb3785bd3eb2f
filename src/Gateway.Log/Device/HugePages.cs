using System.Globalization;
using System.Runtime.InteropServices;

namespace Gateway.Log.Device;

/// <summary>
/// Transparent huge pages for the managed heap while partitions open. Each partition's FasterLog allocates page
/// buffers when it opens (two to four pages of 4 MiB: the first two, then the tail page and the next) and clears
/// them: where page faults are expensive, as in a VM, a 2 MiB fault costs far less per byte than 4 KiB ones
/// (figures: docs/storage.md). Only where Linux grants huge pages on request
/// (<c>/sys/kernel/mm/transparent_hugepage/enabled</c> is <c>madvise</c>); once the last opening ends, the heap is
/// advised back, so that the kernel's background collapsing does not fill sparsely used heap memory later.
/// </summary>
internal static partial class HugePages
{
    private const int AdviseHugePage = 14; // MADV_HUGEPAGE
    private const int AdviseNoHugePage = 15; // MADV_NOHUGEPAGE

    private static readonly Lock Gate = new();
    private static int _open;
    private static (long Start, long End)? s_run; // the heap's run of mappings last found (under Gate)

    /// <summary>Whether huge pages are granted on request here.</summary>
    public static bool OnRequest { get; } = ReadOnRequest();

    /// <summary>The size of the last range advised for huge pages, 0 when none was (tests).</summary>
    internal static long AdvisedBytes { get; private set; }

    /// <summary>Huge pages for the managed heap until the scope is disposed (scopes nest; the last one ends it).</summary>
    public static Scope Open()
    {
        if (!OnRequest)
        {
            return default;
        }
        lock (Gate)
        {
            if (_open++ == 0)
            {
                AdvisedBytes = AdviseManagedHeap(AdviseHugePage);
            }
        }
        return new Scope(true);
    }

    private static void Close()
    {
        lock (Gate)
        {
            if (--_open == 0)
            {
                AdviseManagedHeap(AdviseNoHugePage);
            }
        }
    }

    /// <summary>Ends a <see cref="Open"/>.</summary>
    public readonly struct Scope(bool open) : IDisposable
    {
        public void Dispose()
        {
            if (open)
            {
                Close();
            }
        }
    }

    /// <summary>Advises the managed heap's address range; returns its size, 0 when it could not. Only advice.</summary>
    private static long AdviseManagedHeap(int advice)
    {
        try
        {
            byte[] probe = GC.AllocateArray<byte>(1, pinned: true);
            long address = (long)Marshal.UnsafeAddrOfPinnedArrayElement(probe, 0);
            // The heap's reservation stays where it is: the maps are read again only when the heap is found outside it.
            var run = s_run is (long knownStart, long knownEnd) && knownStart <= address && address < knownEnd
                ? s_run
                : s_run = FindAnonymousRun(File.ReadAllLines("/proc/self/maps"), address);
            GC.KeepAlive(probe);
            if (run is not (long start, long end))
            {
                return 0;
            }
            return Advise((nint)start, (nuint)(end - start), advice) == 0 ? end - start : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or EntryPointNotFoundException or DllNotFoundException)
        {
            return 0; // no advice then: the heap works as before
        }
    }

    private static bool ReadOnRequest()
    {
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess)
        {
            return false;
        }
        try
        {
            return File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled").Contains("[madvise]", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false; // no transparent huge pages in this kernel
        }
    }

    /// <summary>
    /// The run of adjacent anonymous mappings around <paramref name="address"/>: the heap's reservation and the
    /// parts of it already committed (each a mapping of its own). It may take in an anonymous neighbour of the
    /// reservation (a malloc arena); the advice lasts only while partitions open.
    /// </summary>
    internal static (long Start, long End)? FindAnonymousRun(IReadOnlyList<string> maps, long address)
    {
        var ranges = new List<(long Start, long End, bool Anonymous)>(maps.Count);
        foreach (string line in maps)
        {
            string[] fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            int dash = fields.Length >= 5 ? fields[0].IndexOf('-', StringComparison.Ordinal) : -1;
            if (dash < 0)
            {
                continue;
            }
            long start = long.Parse(fields[0].AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            long end = long.Parse(fields[0].AsSpan(dash + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            bool anonymous = fields[4] == "0" && (fields.Length < 6 || string.IsNullOrWhiteSpace(fields[5]));
            ranges.Add((start, end, anonymous));
        }
        int at = ranges.FindIndex(r => r.Start <= address && address < r.End);
        if (at < 0 || !ranges[at].Anonymous)
        {
            return null;
        }
        int first = at;
        while (first > 0 && ranges[first - 1].Anonymous && ranges[first - 1].End == ranges[first].Start)
        {
            first--;
        }
        int last = at;
        while (last < ranges.Count - 1 && ranges[last + 1].Anonymous && ranges[last + 1].Start == ranges[last].End)
        {
            last++;
        }
        return (ranges[first].Start, ranges[last].End);
    }

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Advise(nint address, nuint length, int advice);
}
