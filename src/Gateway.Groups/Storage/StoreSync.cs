using System.Runtime.InteropServices;

namespace Gateway.Groups.Storage;

/// <summary>
/// Makes the group store's writes survive a power cut. LiteDB 5 writes each transaction into its log file
/// (<c>{name}-log{ext}</c> beside the database) through the operating system's page cache and syncs only when it
/// copies the log into the database (a checkpoint): a committed transaction survives a killed process, not a power cut.
/// bench/chaos/run.sh --power-cut showed it: after a cut a group and all its acknowledged commits were gone. So after
/// every transaction the store syncs the log file itself (an <c>fsync</c> of the file reaches the same pages LiteDB
/// wrote, which .NET's FileStream passes straight to the OS at LiteDB's page size), and the directory once the log
/// file exists, so that its entry is durable too. A failed sync is the write's failure. Elsewhere than Linux it does nothing.
/// </summary>
internal sealed partial class StoreSync
{
    private const int ReadOnly = 0; // O_RDONLY
    private const int DirectoryOnly = 0x10000; // O_DIRECTORY
    private const int CloseOnExec = 0x80000; // O_CLOEXEC
    private const int NoSuchFile = 2; // ENOENT
    private readonly string _logFile;
    private readonly string _directory;
    private volatile bool _logEntryDurable;

    public StoreSync(string databasePath)
    {
        string full = Path.GetFullPath(databasePath);
        _directory = Path.GetDirectoryName(full)!;
        _logFile = Path.Combine(_directory, $"{Path.GetFileNameWithoutExtension(full)}-log{Path.GetExtension(full)}");
    }

    /// <summary>After LiteDB opened (and perhaps created) the database: its entry in the directory is made durable.</summary>
    public void Opened()
    {
        if (OperatingSystem.IsLinux())
        {
            SyncPath(_directory, DirectoryOnly);
        }
    }

    /// <summary>After a transaction committed: its pages in the log file are durable when this returns.</summary>
    public void Committed()
    {
        if (!OperatingSystem.IsLinux() || !SyncPath(_logFile, 0))
        {
            return; // nothing was written yet (LiteDB creates its log file with the first write)
        }
        if (!_logEntryDurable)
        {
            SyncPath(_directory, DirectoryOnly);
            _logEntryDurable = true;
        }
    }

    /// <summary>fsync of a file or directory; false when it does not exist.</summary>
    private static bool SyncPath(string path, int flags)
    {
        int fd = Open(path, ReadOnly | CloseOnExec | flags);
        if (fd < 0)
        {
            int error = Marshal.GetLastPInvokeError();
            return error == NoSuchFile && flags == 0
                ? false
                : throw new IOException($"Cannot open {path} to sync it: {Marshal.GetPInvokeErrorMessage(error)}", error);
        }
        try
        {
            if (Fsync(fd) != 0)
            {
                int error = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of {path} failed: {Marshal.GetPInvokeErrorMessage(error)}", error);
            }
            return true;
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
