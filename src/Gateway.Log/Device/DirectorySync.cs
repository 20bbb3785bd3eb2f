using System.Runtime.InteropServices;

namespace Gateway.Log.Device;

/// <summary>
/// Makes directory entries durable. A new file, a renamed one or a new directory is on the disk only once the
/// directory holding its entry is synced (<c>fsync</c> of the directory); syncing the file itself makes its data
/// durable, not its name. Without it a power cut can take away a topic, a partition or a segment whose acknowledged
/// data was synced (bench/chaos/powerfs found exactly that). Elsewhere than Linux it does nothing.
/// </summary>
public static partial class DirectorySync
{
    private const int ReadOnly = 0; // O_RDONLY
    private const int DirectoryOnly = 0x10000; // O_DIRECTORY
    private const int CloseOnExec = 0x80000; // O_CLOEXEC

    /// <summary>Syncs the directory: the entries it holds now survive a power cut.</summary>
    public static void Sync(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        int fd = Open(directory, ReadOnly | DirectoryOnly | CloseOnExec);
        if (fd < 0)
        {
            int error = Marshal.GetLastPInvokeError();
            throw new IOException($"Cannot open the directory {directory} to sync it: {Marshal.GetPInvokeErrorMessage(error)}", error);
        }
        try
        {
            if (Fsync(fd) != 0)
            {
                int error = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of the directory {directory} failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Creates the directory and any missing parent, each made durable in its own parent.</summary>
    public static void CreateDirectory(string path)
    {
        path = Path.GetFullPath(path);
        if (Directory.Exists(path))
        {
            return;
        }
        string? parent = Path.GetDirectoryName(path);
        if (parent is not null)
        {
            CreateDirectory(parent);
        }
        Directory.CreateDirectory(path);
        if (parent is not null)
        {
            Sync(parent);
        }
    }

    /// <summary>Syncs the directory holding <paramref name="file"/>, so that its entry (new or renamed) is durable.</summary>
    public static void SyncParentOf(string file) => Sync(Path.GetDirectoryName(Path.GetFullPath(file))!);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
