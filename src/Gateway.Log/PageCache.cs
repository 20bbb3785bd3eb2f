using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log;

/// <summary>Tells the operating system (Linux, 64-bit) that a file's cached pages are no longer needed.</summary>
internal static partial class PageCache
{
    public const long PageSize = 4096;

    private const int DontNeed = 4; // POSIX_FADV_DONTNEED

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

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int Fadvise(int fd, long offset, long length, int advice);
}
