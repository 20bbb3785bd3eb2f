using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log.Device;

/// <summary>
/// The operating system's page cache (Linux): dropping a file's cached pages, and file handles whose I/O bypasses
/// it (<c>O_DIRECT</c>).
/// </summary>
internal static partial class PageCache
{
    public const long PageSize = 4096;

    private const int DontNeed = 4; // POSIX_FADV_DONTNEED
    private const int GetFlags = 3; // F_GETFL
    private const int SetFlags = 4; // F_SETFL

    /// <summary><c>O_DIRECT</c>'s value, which differs between architectures; 0 where it is not known.</summary>
    private static readonly int Direct = !OperatingSystem.IsLinux() ? 0 : RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 or Architecture.X86 or Architecture.RiscV64 or Architecture.LoongArch64 or Architecture.S390x => 0x4000,
        Architecture.Arm64 or Architecture.Arm => 0x10000,
        Architecture.Ppc64le => 0x20000,
        _ => 0,
    };

    /// <summary>Whether <see cref="Bypass"/> can do anything here.</summary>
    public static bool CanBypass { get; } = Direct != 0;

    /// <summary>Whether <see cref="Drop"/> does anything here.</summary>
    public static bool CanDrop { get; } = OperatingSystem.IsLinux() && Environment.Is64BitProcess;

    /// <summary>
    /// Drops the clean cached pages of the range (pages still being written stay). Only advice: the outcome is not
    /// checked, since no data depends on it.
    /// </summary>
    public static void Drop(SafeFileHandle handle, long offset, long length)
    {
        if (!CanDrop)
        {
            return;
        }
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            _ = Fadvise((int)handle.DangerousGetHandle(), offset, length, DontNeed);
        }
        catch (ObjectDisposedException)
        {
            // Closed meanwhile (the segment was removed): nothing of it is cached for long.
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Makes the reads and writes through <paramref name="handle"/> bypass the page cache (<c>O_DIRECT</c>): data
    /// moves between the caller's memory and the disk, and each transfer's memory, offset and length must be aligned
    /// to what the file system asks (a transfer it refuses fails with <c>EINVAL</c> and writes nothing). False where
    /// the flag cannot be set (not Linux, or a file system without direct I/O).
    /// </summary>
    public static bool Bypass(SafeFileHandle handle)
    {
        if (!CanBypass)
        {
            return false;
        }
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            int flags = Fcntl(fd, GetFlags, 0);
            return flags >= 0 && Fcntl(fd, SetFlags, flags | Direct) == 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "fcntl")]
    private static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int Fadvise(int fd, long offset, long length, int advice);
}
