using Gateway.Log.Device;

namespace Gateway.Log.Tests;

/// <summary>The managed heap's address range is found in the process's mappings and advised to use huge pages.</summary>
[Collection(nameof(HugePagesTests))] // alone: the other tests' log stores open scopes of their own
public sealed class HugePagesTests
{
    private static readonly string[] Maps =
    [
        "55d4c0a00000-55d4c0a01000 r--p 00000000 103:02 1234   /usr/share/dotnet/dotnet",
        "7f3aaa000000-7f3aaadce000 rw-p 00000000 00:00 0 ",
        "7f3aaadce000-7f3aab000000 ---p 00000000 00:00 0 ",
        "7f3aab000000-7f3aab011000 rw-p 00000000 00:00 0 ",
        "7f3aab011000-7f3aad000000 ---p 00000000 00:00 0 ",
        "7f3aad000000-7f3aad400000 rw-p 00000000 00:00 0 ",
        "7f3aad400000-7f4670000000 ---p 00000000 00:00 0 ",
        "7f4670000000-7f4670021000 r-xp 00000000 103:02 5678   /usr/share/dotnet/shared/libcoreclr.so",
        "7f4671000000-7f4672000000 rw-p 00000000 00:00 0 ",
    ];

    [Fact]
    public void The_run_of_adjacent_anonymous_mappings_around_the_address_is_found()
    {
        // From inside a committed part: the whole run, the reservation included, up to the library mapped after it.
        Assert.Equal((0x7f3aaa000000L, 0x7f4670000000L), HugePages.FindAnonymousRun(Maps, 0x7f3aab000010));
        // From the reserved part: the same run.
        Assert.Equal((0x7f3aaa000000L, 0x7f4670000000L), HugePages.FindAnonymousRun(Maps, 0x7f4000000000));
        // A mapping after a gap is a run of its own.
        Assert.Equal((0x7f4671000000L, 0x7f4672000000L), HugePages.FindAnonymousRun(Maps, 0x7f4671000000));
    }

    [Fact]
    public void An_address_in_a_file_mapping_or_in_no_mapping_gives_nothing()
    {
        Assert.Null(HugePages.FindAnonymousRun(Maps, 0x7f4670000100));
        Assert.Null(HugePages.FindAnonymousRun(Maps, 0x7f4670800000));
        Assert.Null(HugePages.FindAnonymousRun(Maps, 0x1000));
    }

    [Fact]
    public void While_a_scope_is_open_the_heap_is_advised_and_after_the_last_one_no_longer()
    {
        if (!HugePages.OnRequest)
        {
            return; // huge pages are not granted on request here (Linux's setting is "always" or "never"): nothing to advise
        }
        byte[] buffer;
        long address;
        using (HugePages.Open())
        {
            using (HugePages.Open())
            {
                Assert.True(HugePages.AdvisedBytes > 0, "nothing was advised");
                // A buffer as the logs allocate theirs: its mapping carries the advice (VmFlags "hg").
                buffer = GC.AllocateArray<byte>(4 << 20, pinned: true);
                address = (long)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(buffer, buffer.Length / 2);
                Assert.Contains("hg", VmFlagsOf(address));
            }
            Assert.Contains("hg", VmFlagsOf(address)); // an inner scope's end changes nothing
        }
        Assert.DoesNotContain("hg", VmFlagsOf(address));
        Assert.Contains("nh", VmFlagsOf(address));
        GC.KeepAlive(buffer);
    }

    private static string[] VmFlagsOf(long address)
    {
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            if (char.IsAsciiHexDigit(line[0]) && line.Contains('-', StringComparison.Ordinal) && line.IndexOf(' ', StringComparison.Ordinal) > line.IndexOf('-', StringComparison.Ordinal))
            {
                string[] range = line[..line.IndexOf(' ', StringComparison.Ordinal)].Split('-');
                inside = Convert.ToInt64(range[0], 16) <= address && address < Convert.ToInt64(range[1], 16);
            }
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal))
            {
                return line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            }
        }
        throw new InvalidOperationException($"no mapping holds 0x{address:x}");
    }
}

/// <summary>Runs <see cref="HugePagesTests"/> after every other test, none beside it.</summary>
[CollectionDefinition(nameof(HugePagesTests), DisableParallelization = true)]
public sealed class HugePagesAlone;
