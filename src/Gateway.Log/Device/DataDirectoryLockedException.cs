namespace Gateway.Log.Device;

/// <summary>Another process (or another store in this one) holds the data directory's lock.</summary>
public sealed class DataDirectoryLockedException(string directory, int? holderProcessId) : Exception(
    $"The data directory {directory} is in use by another Gateway server" +
    (holderProcessId is int pid ? $" (process {pid})" : "") +
    $"; one directory serves one server at a time. Stop that server, or give this one another Storage:DataDirectory.")
{
    public string Directory { get; } = directory;

    /// <summary>The holder's process id, when its lock file says.</summary>
    public int? HolderProcessId { get; } = holderProcessId;
}
