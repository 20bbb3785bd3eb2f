using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Gateway.Log.Device;

/// <summary>
/// An exclusive lock on a data directory for as long as it is held (Kafka's <c>.lock</c>): a second process, or a
/// second store in this one, cannot take it, so two servers never write one directory's logs and groups at once.
/// The lock is the kernel's (<c>flock</c> on <c>{DataDirectory}/.lock</c>): it goes with the process, even on
/// kill -9, and is never stale. The file holds the holder's process id, for the message of whoever is refused.
/// </summary>
public sealed partial class DataDirectoryLock : IDisposable
{
    /// <summary>The file locked, inside the data directory.</summary>
    public const string FileName = ".lock";

    private readonly SafeFileHandle _handle;

    private DataDirectoryLock(string directory, SafeFileHandle handle)
    {
        Directory = directory;
        _handle = handle;
    }

    /// <summary>The data directory locked (a full path).</summary>
    public string Directory { get; }

    /// <summary>
    /// Takes the lock on <paramref name="directory"/>, creating the directory if needed, or throws
    /// <see cref="DataDirectoryLockedException"/> at once when another holder has it. Never waits.
    /// </summary>
    public static DataDirectoryLock Acquire(string directory)
    {
        directory = Path.GetFullPath(directory);
        DirectorySync.CreateDirectory(directory);
        // A data directory made just before the start (mkdir, a script) may not be durable in its parent yet: with it,
        // a power cut would take away everything acknowledged inside it (bench/chaos/run.sh --power-cut found this).
        DirectorySync.SyncParentOf(directory);
        string path = Path.Combine(directory, FileName);
        var handle = OperatingSystem.IsLinux() ? LockLinux(path, directory) : LockElsewhere(path, directory);
        try
        {
            byte[] pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
            RandomAccess.SetLength(handle, 0);
            RandomAccess.Write(handle, pid, 0);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        return new DataDirectoryLock(directory, handle);
    }

    /// <summary>Releases the lock (closing the file releases it; the file itself stays, as Kafka's does).</summary>
    public void Dispose() => _handle.Dispose();

    private static SafeFileHandle LockLinux(string path, string directory)
    {
        // Opened here rather than through FileStream: .NET takes its own flock for FileShare, a shared one even for a
        // reader, which would keep the refused process from reading the holder's id.
        int fd = Open(path, ReadWrite | Create | CloseOnExec, 0b110_100_100);
        if (fd < 0)
        {
            int error = Marshal.GetLastPInvokeError();
            throw new IOException($"Cannot open {path}: {Marshal.GetPInvokeErrorMessage(error)}", error);
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Flock(handle, Exclusive | NonBlocking) == 0)
        {
            return handle;
        }
        int lockError = Marshal.GetLastPInvokeError();
        try
        {
            if (lockError != WouldBlock)
            {
                throw new IOException($"Cannot lock {path}: {Marshal.GetPInvokeErrorMessage(lockError)}", lockError);
            }
            throw new DataDirectoryLockedException(directory, ReadHolder(handle));
        }
        finally
        {
            handle.Dispose();
        }
    }

    private static SafeFileHandle LockElsewhere(string path, string directory)
    {
        try
        {
            return File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw new DataDirectoryLockedException(directory, holderProcessId: null);
        }
    }

    private static int? ReadHolder(SafeFileHandle handle)
    {
        Span<byte> buffer = stackalloc byte[32];
        int read = RandomAccess.Read(handle, buffer, 0);
        return int.TryParse(Encoding.ASCII.GetString(buffer[..read]).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : null;
    }

    private const int ReadWrite = 0x2; // O_RDWR
    private const int Create = 0x40; // O_CREAT
    private const int CloseOnExec = 0x80000; // O_CLOEXEC (Linux): a child process does not inherit the lock
    private const int Exclusive = 2; // LOCK_EX
    private const int NonBlocking = 4; // LOCK_NB
    private const int WouldBlock = 11; // EWOULDBLOCK (Linux)

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(SafeFileHandle file, int operation);
}
