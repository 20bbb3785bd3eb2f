using System.Runtime.InteropServices;
using FASTER.core;
using Gateway.Log.Device;

namespace Gateway.Log.Tests;

/// <summary>The partition's log device: FasterLog's files, its reads and writes on threads of its own.</summary>
public sealed class SegmentFileDeviceTests : IDisposable
{
    private const int Length = 4096;
    private const long SegmentSize = 1L << 20;
    private const int BufferPages = 32; // for writes of several pages, or several writes in flight

    private readonly TempDirectory _dir = new();
    private readonly IntPtr _buffer = AlignedBuffer();

    public void Dispose()
    {
        FreeBuffer(_buffer);
        _dir.Dispose();
    }

    private string FileName => Path.Combine(_dir.Path, "data.log");

    [Fact]
    public async Task Files_written_by_FasterLogs_own_device_read_back_the_same_and_the_other_way_round()
    {
        // Partitions written before this device existed must open: same file names, same bytes at the same places.
        var before = Pattern(seed: 1);
        using (var stock = Devices.CreateLogDevice(FileName))
        {
            stock.Initialize(SegmentSize);
            Fill(before);
            Assert.Equal((0u, (uint)Length), await WriteAsync(stock, segment: 1, address: 8192));
        }
        var after = Pattern(seed: 2);
        using (var device = new SegmentFileDevice(FileName, "test"))
        {
            device.Initialize(SegmentSize);
            Assert.Equal((0u, (uint)Length), await ReadAsync(device, segment: 1, address: 8192));
            Assert.Equal(before, Buffer());
            Fill(after);
            Assert.Equal((0u, (uint)Length), await WriteAsync(device, segment: 1, address: 12288));
        }
        Assert.True(File.Exists(FileName + ".1"));
        using (var stock = Devices.CreateLogDevice(FileName))
        {
            stock.Initialize(SegmentSize);
            Assert.Equal((0u, (uint)Length), await ReadAsync(stock, segment: 1, address: 12288));
            Assert.Equal(after, Buffer());
        }
    }

    [Fact]
    public async Task Reads_complete_on_the_partitions_own_thread_never_on_the_thread_pool()
    {
        // A reader blocked in FasterLog waiting for its page must not need a pool thread to run the read it waits for.
        using var device = await WrittenDeviceAsync("t/0", seed: 3);
        var read = new TaskCompletionSource<Thread>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.ReadAsync(0, 0, _buffer, Length, (_, _, _) => read.SetResult(Thread.CurrentThread), null!);
        var reader = await read.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.False(reader.IsThreadPoolThread);
        Assert.Equal("t/0 reads", reader.Name);
    }

    [Fact]
    public async Task A_write_that_cannot_reach_its_file_fails_with_an_error_code_and_no_bytes()
    {
        Directory.CreateDirectory(FileName + ".0"); // the segment's file cannot be opened
        using var device = new SegmentFileDevice(FileName, "test");
        device.Initialize(SegmentSize);
        Fill(Pattern(seed: 4));

        var (error, bytes) = await WriteAsync(device, segment: 0, address: 0);

        Assert.NotEqual(0u, error);
        Assert.Equal(0u, bytes);
    }

    [Fact]
    public async Task A_read_past_the_end_of_the_file_reports_the_bytes_there_were()
    {
        using var device = await WrittenDeviceAsync("test", seed: 5);

        Assert.Equal((0u, 2048u), await ReadAsync(device, segment: 0, address: 2048));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Written_data_bypasses_the_page_cache_unless_asked_to_stay_and_reads_back_the_same(bool cacheWrites)
    {
        // Three whole pages, then a write from the middle of the fourth to the middle of the fifth, which the next
        // commit would write again from there on (FasterLog's next flush starts at the sector where this one ended).
        bool tmpfs = OnTmpfs(); // tmpfs pages are the file itself: they are always cached
        using (var device = new SegmentFileDevice(FileName, "test", cacheWrites))
        {
            device.Initialize(SegmentSize);
            await WritePagesAsync(device);
            if (!tmpfs)
            {
                Assert.Equal(!cacheWrites && PageCache.CanBypass, device.WritesBypassCache);
            }
        }

        bool[] cached = CachedPages(FileName + ".0", pages: 5);

        if (cacheWrites || tmpfs)
        {
            Assert.All(cached, Assert.True);
        }
        else if (PageCache.CanBypass)
        {
            Assert.Equal([false, false, false, false, false], cached); // not even the last, partly written page
        }
        using (var device = new SegmentFileDevice(FileName, "test"))
        {
            device.Initialize(SegmentSize);
            Assert.Equal((0u, (uint)Length), await ReadAsync(device, segment: 0, address: Length));
            Assert.Equal(Pattern(seed: 11), Buffer());
        }
    }

    [Fact]
    public async Task A_write_the_file_system_will_not_do_directly_goes_through_the_page_cache_which_then_drops_all_but_the_last_page()
    {
        if (OnTmpfs() || !PageCache.CanBypass)
        {
            return; // no direct I/O to refuse a write, or pages that cannot be dropped
        }
        using var device = new SegmentFileDevice(FileName, "test");
        device.Initialize(SegmentSize);
        Assert.True(device.WritesBypassCache);

        // Off the 512-byte alignment direct I/O needs (as every write is on a disk of 4 KiB logical sectors): refused
        // directly, written through the page cache, and every write after it too.
        Fill(Pattern(seed: 20));
        Assert.Equal((0u, (uint)Length), await WriteAsync(device, segment: 0, address: 256));
        Assert.False(device.WritesBypassCache);
        await WritePagesAsync(device, firstPage: 1);

        Assert.Equal([false, false, false, false, true], CachedPages(FileName + ".0", pages: 5));
        Assert.Equal((0u, (uint)Length), await ReadAsync(device, segment: 0, address: 0));
        Assert.Equal(Pattern(seed: 20)[..(Length - 256)], Buffer()[256..]);
        Assert.Equal((0u, (uint)Length), await ReadAsync(device, segment: 0, address: 2 * Length));
        Assert.Equal(Pattern(seed: 12), Buffer());
    }

    [Fact]
    public async Task A_busy_log_is_written_ahead_with_zeros_that_never_cover_its_data()
    {
        if (OnTmpfs() || !PageCache.CanBypass)
        {
            return; // written ahead only where writes bypass the page cache
        }
        const long Ahead = 16L << 20;
        IntPtr pages = AlignedBuffer(BufferPages * Length);
        try
        {
            long written = 0;
            using (var device = new SegmentFileDevice(FileName, "test"))
            {
                device.Initialize(SegmentSize);
                // 6 MB of small writes, eight at a time (FasterLog has several pages in flight), over six segments:
                // writing ahead starts after 4 MB, beside the writes.
                written = await WriteSequentiallyAsync(device, pages, from: 0, until: 6L << 20);
                await WaitForAsync(() => device.PreparedUntil >= written + Ahead);

                Assert.True(device.WritesBypassCache);
                for (long segment = written / SegmentSize; segment < (written + Ahead) / SegmentSize; segment++)
                {
                    Assert.Equal(SegmentSize, new FileInfo($"{FileName}.{segment}").Length);
                }
                // Writes then land on blocks written ahead, which read back as written.
                written = await WriteSequentiallyAsync(device, pages, from: written, until: written + (1L << 20));
            }
            using (var device = new SegmentFileDevice(FileName, "test"))
            {
                device.Initialize(SegmentSize);
                for (long address = 0; address < written; address += Length)
                {
                    Assert.Equal((0u, (uint)Length), await ReadAsync(device, (int)(address / SegmentSize), (ulong)(address % SegmentSize)));
                    Assert.Equal(Pattern(seed: (int)(address / Length)), Buffer());
                }
                Assert.Equal((0u, (uint)Length), await ReadAsync(device, (int)(written / SegmentSize), (ulong)(written % SegmentSize)));
                Assert.All(Buffer(), b => Assert.Equal(0, b));
            }
        }
        finally
        {
            FreeBuffer(pages);
        }
    }

    [Fact]
    public async Task A_seldom_written_log_or_one_written_in_large_pieces_is_not_written_ahead()
    {
        IntPtr pages = AlignedBuffer(BufferPages * Length);
        try
        {
            using var device = new SegmentFileDevice(FileName, "test");
            device.Initialize(SegmentSize);
            long written = await WriteSequentiallyAsync(device, pages, from: 0, until: 1L << 20);
            Assert.Equal(written, new FileInfo(FileName + ".0").Length); // less than 4 MB since it opened

            // 128 KB per write (large produce requests): the file system's own metadata write is then a small part of
            // each, and zeros would double the bytes written.
            written = await WriteSequentiallyAsync(device, pages, from: written, until: 6L << 20, pagesPerWrite: BufferPages, inFlight: 1);
            await Task.Delay(200);
            Assert.Equal(-1, device.PreparedUntil);
            Assert.Equal(6L << 20, written);
            Assert.Equal(SegmentSize, new FileInfo(FileName + ".5").Length);
            Assert.False(File.Exists(FileName + ".6"));
        }
        finally
        {
            FreeBuffer(pages);
        }
    }

    [Fact]
    public async Task A_closed_device_fails_what_is_asked_of_it_instead_of_losing_it()
    {
        var device = new SegmentFileDevice(FileName, "test");
        device.Initialize(SegmentSize);
        device.Dispose();

        Assert.Equal((uint.MaxValue, 0u), await WriteAsync(device, segment: 0, address: 0));
        Assert.Equal((uint.MaxValue, 0u), await ReadAsync(device, segment: 0, address: 0));
    }

    [Fact]
    public async Task An_io_thread_runs_operations_in_order_ends_when_idle_and_starts_again_for_the_next()
    {
        var ran = new List<int>();
        var threads = new HashSet<Thread>();
        var done = new SemaphoreSlim(0);
        var io = new IoThread<int>("test", n =>
        {
            lock (ran)
            {
                ran.Add(n);
                threads.Add(Thread.CurrentThread);
            }
            done.Release();
        }, TimeSpan.FromMilliseconds(50));

        for (int i = 0; i < 100; i++)
        {
            io.Post(i);
        }
        for (int i = 0; i < 100; i++)
        {
            Assert.True(await done.WaitAsync(TimeSpan.FromSeconds(10)));
        }
        Assert.Equal(Enumerable.Range(0, 100), ran);
        Assert.Single(threads);

        var idle = System.Diagnostics.Stopwatch.StartNew();
        while (io.Running && idle.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(10);
        }
        Assert.False(io.Running);
        Assert.False(io.Busy);

        io.Post(100);
        Assert.True(await done.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(100, ran[^1]);
        Assert.Equal(2, threads.Count);
        io.Close();
    }

    /// <summary>Pages up to 2 whole (patterns 10 to 12), then one block from the middle of page 3 (pattern 13).</summary>
    private async Task WritePagesAsync(SegmentFileDevice device, int firstPage = 0)
    {
        for (int page = firstPage; page < 3; page++)
        {
            Fill(Pattern(seed: 10 + page));
            Assert.Equal((0u, (uint)Length), await WriteAsync(device, segment: 0, address: (ulong)(page * Length)));
        }
        Fill(Pattern(seed: 13));
        Assert.Equal((0u, (uint)Length), await WriteAsync(device, segment: 0, address: (3 * Length) + (Length / 2)));
    }

    /// <summary>
    /// Writes the pages from <paramref name="from"/> to <paramref name="until"/> in order, from a buffer of
    /// <see cref="BufferPages"/>: <paramref name="inFlight"/> writes at a time of <paramref name="pagesPerWrite"/> pages
    /// each, page <c>n</c> of the log holding pattern <c>n</c>. Returns where the writes end.
    /// </summary>
    private static async Task<long> WriteSequentiallyAsync(SegmentFileDevice device, IntPtr pages, long from, long until, int pagesPerWrite = 1, int inFlight = 8)
    {
        int bytesPerWrite = pagesPerWrite * Length;
        long address = from;
        while (address < until)
        {
            var writes = new List<Task<(uint Error, uint Bytes)>>();
            for (int slot = 0; slot < inFlight && address < until; slot++, address += bytesPerWrite)
            {
                IntPtr source = pages + (slot * bytesPerWrite); // the buffer holds BufferPages: enough for every write in flight
                for (int page = 0; page < pagesPerWrite; page++)
                {
                    unsafe
                    {
                        Pattern(seed: (int)((address / Length) + page)).CopyTo(new Span<byte>((void*)(source + (page * Length)), Length));
                    }
                }
                var done = new TaskCompletionSource<(uint, uint)>(TaskCreationOptions.RunContinuationsAsynchronously);
                device.WriteAsync(source, (int)(address / SegmentSize), (ulong)(address % SegmentSize), (uint)bytesPerWrite, (error, bytes, _) => done.SetResult((error, bytes)), null!);
                writes.Add(done.Task);
            }
            foreach (var write in writes)
            {
                Assert.Equal((0u, (uint)bytesPerWrite), await write.WaitAsync(TimeSpan.FromSeconds(30)));
            }
        }
        return address;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!condition() && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(10);
        }
        Assert.True(condition());
    }

    private bool OnTmpfs() => new DriveInfo(_dir.Path).DriveFormat == "tmpfs";

    /// <summary>A device whose segment 0 holds one block of the pattern at address 0.</summary>
    private async Task<SegmentFileDevice> WrittenDeviceAsync(string name, int seed)
    {
        var device = new SegmentFileDevice(FileName, name);
        device.Initialize(SegmentSize);
        Fill(Pattern(seed));
        Assert.Equal((0u, (uint)Length), await WriteAsync(device, segment: 0, address: 0));
        return device;
    }

    /// <summary>Which of the file's first pages (it must reach into the last) are in the page cache: <c>mincore</c> over a mapping that touches none.</summary>
    private static unsafe bool[] CachedPages(string path, int pages)
    {
        using var file = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
        long length = Math.Min(new FileInfo(path).Length, pages * 4096L);
        using var view = file.CreateViewAccessor(0, length, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        try
        {
            var resident = new byte[pages];
            fixed (byte* vector = resident)
            {
                Assert.Equal(0, Mincore(start + view.PointerOffset, (nuint)length, vector));
            }
            return [.. resident.Select(b => (b & 1) != 0)];
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    [DllImport("libc", EntryPoint = "mincore", SetLastError = true)]
    private static extern unsafe int Mincore(byte* address, nuint length, byte* vector);

    private static byte[] Pattern(int seed)
    {
        var bytes = new byte[Length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    // FasterLog hands its devices sector-aligned native memory.
    private static unsafe IntPtr AlignedBuffer(int length = Length) => (IntPtr)NativeMemory.AlignedAlloc((nuint)length, 512);

    private static unsafe void FreeBuffer(IntPtr buffer) => NativeMemory.AlignedFree((void*)buffer);

    private unsafe void Fill(byte[] bytes) => bytes.CopyTo(new Span<byte>((void*)_buffer, Length));

    private unsafe byte[] Buffer() => new Span<byte>((void*)_buffer, Length).ToArray();

    private Task<(uint Error, uint Bytes)> WriteAsync(IDevice device, int segment, ulong address)
    {
        var done = new TaskCompletionSource<(uint, uint)>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.WriteAsync(_buffer, segment, address, Length, (error, bytes, _) => done.SetResult((error, bytes)), null!);
        return done.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private Task<(uint Error, uint Bytes)> ReadAsync(IDevice device, int segment, ulong address)
    {
        var done = new TaskCompletionSource<(uint, uint)>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.ReadAsync(segment, address, _buffer, Length, (error, bytes, _) => done.SetResult((error, bytes)), null!);
        return done.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
