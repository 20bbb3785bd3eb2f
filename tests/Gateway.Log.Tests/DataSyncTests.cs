using System.Runtime.InteropServices;
using Gateway.Log.Device;

namespace Gateway.Log.Tests;

/// <summary>Writes that ask for their own data sync (<c>RWF_DSYNC</c>): what they write, and how they fail.</summary>
public sealed class DataSyncTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string FilePath => Path.Combine(_dir.Path, "file");

    [Fact]
    public void A_write_puts_every_byte_at_its_offset_and_extends_the_file()
    {
        byte[] first = Bytes(10_000, seed: 1), second = Bytes(3_000, seed: 2);
        using (var handle = File.OpenHandle(FilePath, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, DataSync.Options))
        {
            DataSync.Write(handle, first, 0);
            DataSync.Write(handle, second, 20_000);
            Assert.Equal(23_000, RandomAccess.GetLength(handle));
        }

        byte[] file = File.ReadAllBytes(FilePath);
        Assert.Equal(first, file[..10_000]);
        Assert.All(file[10_000..20_000], b => Assert.Equal(0, b));
        Assert.Equal(second, file[20_000..]);
    }

    [Fact]
    public void A_failed_write_throws_an_io_exception_carrying_the_error_number()
    {
        File.WriteAllBytes(FilePath, [1, 2, 3]);
        using var handle = File.OpenHandle(FilePath, FileMode.Open, FileAccess.Read);

        var failure = Assert.ThrowsAny<IOException>(() => DataSync.Write(handle, Bytes(512, seed: 3), 0));

        if (DataSync.Supported)
        {
            Assert.Equal(9, failure.HResult); // EBADF: the handle is not open for writing
        }
        Assert.Equal([1, 2, 3], File.ReadAllBytes(FilePath));
    }

    [Fact]
    public unsafe void A_direct_write_off_the_alignment_fails_with_invalid_argument_and_writes_nothing()
    {
        // SegmentFileDevice relies on this answer (EINVAL, as RandomAccess gives it) to fall back to the page cache.
        if (!DataSync.Supported || !PageCache.CanBypass || new DriveInfo(_dir.Path).DriveFormat == "tmpfs")
        {
            return;
        }
        using var handle = File.OpenHandle(FilePath, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, DataSync.Options);
        Assert.True(PageCache.Bypass(handle));
        void* buffer = NativeMemory.AlignedAlloc(4096, 4096);
        try
        {
            var failure = Assert.ThrowsAny<IOException>(() => DataSync.Write(handle, new ReadOnlySpan<byte>(buffer, 4096), 100));

            Assert.Equal(22, failure.HResult & 0xFFFF);
            Assert.Equal(0, RandomAccess.GetLength(handle));
            DataSync.Write(handle, new ReadOnlySpan<byte>(buffer, 4096), 4096); // aligned: written
            Assert.Equal(8192, RandomAccess.GetLength(handle));
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    private static byte[] Bytes(int count, int seed)
    {
        byte[] bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
