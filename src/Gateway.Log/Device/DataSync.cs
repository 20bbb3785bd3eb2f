using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log.Device;

/// <summary>
/// Writes that return once their data, and the metadata needed to read it back (the file's size, its blocks), are on
/// stable storage: <c>pwritev2</c> with <c>RWF_DSYNC</c>, which is <c>O_DSYNC</c> for one write. A handle opened
/// write-through (<c>O_SYNC</c>, what <see cref="FileOptions.WriteThrough"/> asks for on Linux) also makes the inode
/// durable whenever only its modification time changed, a timestamp nothing here reads; a file system with a journal
/// (ext4's default, XFS) then skips that write. ext4 without a journal, as on the benchmark VM, writes the inode's
/// block anyway, so there the gain comes with the log's blocks written ahead (<see cref="SegmentFileDevice"/>;
/// figures: docs/storage.md). Where <c>pwritev2</c> is missing (not Linux), handles are opened write-through instead
/// (<see cref="Options"/>); where the kernel refuses the flag, the write is followed by <c>fdatasync</c>.
/// </summary>
internal static partial class DataSync
{
    private const int DSync = 0x2; // RWF_DSYNC
    private const int Interrupted = 4; // EINTR
    private const int NotImplemented = 38; // ENOSYS
    private const int NotSupported = 95; // EOPNOTSUPP

    private static volatile bool s_flagRefused;

    /// <summary>Whether writes here can ask for their own sync (Linux, 64-bit).</summary>
    public static bool Supported { get; } = OperatingSystem.IsLinux() && Environment.Is64BitProcess;

    /// <summary>The options to open a handle that <see cref="Write"/> writes through.</summary>
    public static FileOptions Options => Supported ? FileOptions.None : FileOptions.WriteThrough;

    /// <summary>
    /// Writes all of <paramref name="data"/> at <paramref name="offset"/> and returns once it is durable. Failures
    /// throw <see cref="IOException"/> with the error number as its <see cref="Exception.HResult"/>, as
    /// <see cref="RandomAccess.Write(SafeFileHandle, ReadOnlySpan{byte}, long)"/> does.
    /// </summary>
    public static void Write(SafeFileHandle handle, ReadOnlySpan<byte> data, long offset)
    {
        if (Supported && !s_flagRefused && TryWriteSynced(handle, ref data, ref offset))
        {
            return;
        }
        RandomAccess.Write(handle, data, offset);
        if (Supported && DataSyncFile(handle) != 0)
        {
            int error = Marshal.GetLastPInvokeError();
            throw new IOException($"fdatasync failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
        }
    }

    /// <summary>Makes what was written to the file through the page cache durable (<c>fdatasync</c>); throws when that fails.</summary>
    public static void Flush(SafeFileHandle handle)
    {
        if (!Supported)
        {
            throw new PlatformNotSupportedException("fdatasync is called only on 64-bit Linux.");
        }
        while (DataSyncFile(handle) != 0)
        {
            int error = Marshal.GetLastPInvokeError();
            if (error != Interrupted)
            {
                throw new IOException($"fdatasync failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
            }
        }
    }

    /// <summary>
    /// Writes with <c>RWF_DSYNC</c> until all is written (true), or until the kernel refuses the flag (false: before
    /// Linux 4.7), leaving <paramref name="data"/> and <paramref name="offset"/> at what is still to write.
    /// </summary>
    private static unsafe bool TryWriteSynced(SafeFileHandle handle, ref ReadOnlySpan<byte> data, ref long offset)
    {
        while (!data.IsEmpty)
        {
            long written;
            fixed (byte* source = data)
            {
                var vector = new IoVector { Base = source, Length = (nuint)data.Length };
                written = WriteVector(handle, &vector, 1, offset, DSync);
            }
            if (written >= 0)
            {
                data = data[(int)written..];
                offset += written;
                continue;
            }
            int error = Marshal.GetLastPInvokeError();
            if (error is NotImplemented or NotSupported)
            {
                s_flagRefused = true; // write, then sync, from here on
                return false;
            }
            if (error != Interrupted)
            {
                throw new IOException($"Write of {data.Length} bytes at {offset} failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
            }
        }
        return true;
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct IoVector
    {
        public byte* Base;
        public nuint Length;
    }

    [LibraryImport("libc", EntryPoint = "pwritev2", SetLastError = true)]
    private static unsafe partial long WriteVector(SafeFileHandle file, IoVector* vectors, int count, long offset, int flags);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int DataSyncFile(SafeFileHandle file);
}
