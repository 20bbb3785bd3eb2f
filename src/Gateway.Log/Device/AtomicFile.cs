namespace Gateway.Log.Device;

/// <summary>
/// Replaces a small file so that a crash or power cut leaves either the old or the new content: temp file, fsync,
/// rename, fsync of the directory.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        string temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        // The rename is durable only with its directory.
        DirectorySync.SyncParentOf(path);
    }
}
