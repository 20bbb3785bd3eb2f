using Gateway.Storage;

namespace Gateway.Log.Device;

/// <summary>
/// Refuses appends while the data volume's free space is below a reserve, before anything is written: a device
/// write that fails for want of space would fail FasterLog's commit and the partition with it. Free space is read
/// from the file system at most every 100 ms and, in between, lowered by every append let through, so a burst
/// cannot slip past the reserve; appends resume by themselves once space is freed.
/// </summary>
internal sealed class DiskSpaceGuard(string directory, long reserveBytes, TimeProvider time)
{
    private static readonly TimeSpan Refresh = TimeSpan.FromMilliseconds(100);
    private long _freeBytes = -1; // not read yet
    private long _checkedAt;

    public void EnsureRoomFor(int bytes)
    {
        if (reserveBytes <= 0)
        {
            return;
        }
        long now = time.GetTimestamp();
        long free = Volatile.Read(ref _freeBytes);
        if (time.GetElapsedTime(Volatile.Read(ref _checkedAt), now) > Refresh || free < reserveBytes + bytes)
        {
            free = new DriveInfo(Path.GetFullPath(directory)).AvailableFreeSpace;
            Volatile.Write(ref _freeBytes, free);
            Volatile.Write(ref _checkedAt, now);
        }
        if (free < reserveBytes + bytes)
        {
            throw new InsufficientStorageException(free, reserveBytes + bytes);
        }
        Interlocked.Add(ref _freeBytes, -bytes);
    }
}
