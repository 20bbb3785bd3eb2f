using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log;

/// <summary>
/// Writes that return once their data, and the metadata needed to read it back (the file's size, its blocks), are on
/// stable storage: <c>pwritev2</c> with <c>RWF_DSYNC</c>, which is <c>O_DSYNC</c> for one write. A handle opened
/// write-through (<c>O_SYNC</c>, what <see cref="FileOptions.WriteThrough"/> asks for on Linux) also makes the inode
/// durable whenever only its modification time changed, a timestamp nothing here reads; a file system with a journal
/// (ext4's default, XFS) then skips that write. ext4 without a journal, as on the benchmark VM, writes the inode's
/// block anyway, so there the gain comes with the log's blocks written ahead (<see cref="SegmentFileDevice"/>;
/// bench/README.md, fifteenth run). Where <c>pwritev2</c> is missing (not Linux), handles are opened write-through
/// instead (<see cref="Options"/>); where the kernel refuses the flag, the write is followed by <c>fdatasync</c>.
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
        if (!Supported)
        {
            RandomAccess.Write(handle, data, offset);
            return;
        }
        if (s_flagRefused)
        {
            RandomAccess.Write(handle, data, offset);
            Flush(handle);
            return;
        }
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            while (!data.IsEmpty)
            {
                long written;
                unsafe
                {
                    fixed (byte* source = data)
                    {
                        var vector = new IoVector { Base = source, Length = (nuint)data.Length };
                        written = WriteVector(fd, &vector, 1, offset, DSync);
                    }
                }
                if (written < 0)
                {
                    int error = Marshal.GetLastPInvokeError();
                    if (error == Interrupted)
                    {
                        continue;
                    }
                    if (error is NotImplemented or NotSupported)
                    {
                        // A kernel without RWF_DSYNC (before 4.7): write, then sync, from here on.
                        s_flagRefused = true;
                        RandomAccess.Write(handle, data, offset);
                        Flush(handle);
                        return;
                    }
                    throw new IOException($"Write of {data.Length} bytes at {offset} failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
                }
                data = data[(int)written..];
                offset += written;
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static void Flush(SafeFileHandle handle)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (DataSyncFile((int)handle.DangerousGetHandle()) != 0)
            {
                int error = Marshal.GetLastPInvokeError();
                throw new IOException($"fdatasync failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct IoVector
    {
        public byte* Base;
        public nuint Length;
    }

    [LibraryImport("libc", EntryPoint = "pwritev2", SetLastError = true)]
    private static unsafe partial long WriteVector(int fd, IoVector* vectors, int count, long offset, int flags);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int DataSyncFile(int fd);
}
