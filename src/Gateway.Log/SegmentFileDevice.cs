using System.Collections.Concurrent;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log;

/// <summary>
/// A partition's log files (<c>data.log.N</c>, one per segment, as FasterLog's own Linux device names them), written
/// through (<c>O_SYNC</c>, as FasterLog's device opens them) and read on threads of their own.
/// <para>
/// FasterLog's stock device on Linux runs every read and write on the thread pool (a task to start it, the file's
/// asynchronous call to run it, which blocks a pool thread in <c>pwrite</c>/<c>pread</c>). That needs a pool large
/// enough for every blocked call at once (it used to be raised to 64 threads), which costs every request on a small
/// machine; and when it is not large enough, a reader blocked waiting for its page (FasterLog's iterators wait
/// synchronously) waits for a pool thread to run the very read it waits for: 32 concurrent cold fetches took up to
/// 17 s with 8 pool threads. Here a partition's writes run in order on one <see cref="IoThread{T}"/> and its reads
/// on another; both start on demand and end when idle. Positional reads and writes share one handle per segment.
/// </para>
/// </summary>
internal sealed class SegmentFileDevice : StorageDeviceBase
{
    private readonly ConcurrentDictionary<int, SafeFileHandle> _segments = new();
    private readonly IoThread<PendingWrite> _writer;
    private readonly IoThread<PendingRead> _reader;
    private volatile bool _closed;

    public SegmentFileDevice(string fileName, string name)
        : base(fileName, sectorSize: 512, Devices.CAPACITY_UNSPECIFIED)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(fileName))!);
        _writer = new IoThread<PendingWrite>($"{name} writes", Write, IoThread<PendingWrite>.DefaultIdleTimeout);
        _reader = new IoThread<PendingRead>($"{name} reads", Read, IoThread<PendingRead>.DefaultIdleTimeout);
    }

    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        if (_closed)
        {
            // Closed: the write fails like a device error, so no commit that needs it can succeed.
            callback(uint.MaxValue, 0, context);
            return;
        }
        _writer.Post(new PendingWrite(sourceAddress, segmentId, (long)destinationAddress, numBytesToWrite, callback, context));
    }

    public override void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context)
    {
        if (_closed)
        {
            callback(uint.MaxValue, 0, context);
            return;
        }
        _reader.Post(new PendingRead(segmentId, (long)sourceAddress, destinationAddress, readLength, callback, context));
    }

    public override void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result)
    {
        RemoveSegment(segment);
        callback(result);
    }

    public override void RemoveSegment(int segment)
    {
        if (_segments.TryRemove(segment, out var handle))
        {
            handle.Dispose();
        }
        try
        {
            File.Delete(GetSegmentFilename(FileName, segment));
        }
        catch (IOException)
        {
            // Left behind, it is below the log's begin address and never read; the next truncation tries again.
        }
    }

    public override long GetFileSize(int segment) => segmentSize > 0 ? segmentSize : RandomAccess.GetLength(Segment(segment));

    public override void Dispose()
    {
        _closed = true;
        // FasterLog is closed after its last commit; a read of a closing iterator may still be under way.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while ((_writer.Busy || _reader.Busy) && waited.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(1);
        }
        _writer.Close();
        _reader.Close();
        foreach (var handle in _segments.Values)
        {
            handle.Dispose();
        }
        _segments.Clear();
    }

    private SafeFileHandle Segment(int segmentId) =>
        _segments.GetOrAdd(segmentId, static (id, device) => File.OpenHandle(
            device.GetSegmentFilename(device.FileName, id), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite,
            FileOptions.WriteThrough), this);

    private void Write(PendingWrite write)
    {
        uint error = 0;
        try
        {
            unsafe
            {
                RandomAccess.Write(Segment(write.SegmentId), new ReadOnlySpan<byte>((void*)write.Source, (int)write.Length), write.Address);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            error = ErrorCode(ex);
        }
        write.Callback(error, error == 0 ? write.Length : 0, write.Context);
    }

    private void Read(PendingRead read)
    {
        uint error = 0;
        uint done = 0;
        try
        {
            var handle = Segment(read.SegmentId);
            while (done < read.Length)
            {
                int n;
                unsafe
                {
                    n = RandomAccess.Read(handle, new Span<byte>((byte*)read.Destination + done, (int)(read.Length - done)), read.Address + done);
                }
                if (n == 0)
                {
                    break; // the end of the file: FasterLog is told how much there was
                }
                done += (uint)n;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            error = ErrorCode(ex);
            done = 0;
        }
        read.Callback(error, done, read.Context);
    }

    private static uint ErrorCode(Exception ex) => (ex.HResult & 0xFFFF) is var code and not 0 ? (uint)code : uint.MaxValue;

    private readonly record struct PendingWrite(IntPtr Source, int SegmentId, long Address, uint Length, DeviceIOCompletionCallback Callback, object Context);

    private readonly record struct PendingRead(int SegmentId, long Address, IntPtr Destination, uint Length, DeviceIOCompletionCallback Callback, object Context);
}
