using System.Buffers.Binary;
using FASTER.core;
using Gateway.Storage.Records;

namespace Gateway.Log.Device;

/// <summary>
/// FasterLog's commit metadata as one record of one sector, overwritten in place by each commit, instead of a new file
/// per commit with the previous one deleted: one write in place is far cheaper per commit than creating a file and
/// deleting another (figures: docs/storage.md). A sector write is atomic (the assumption PostgreSQL's control file
/// makes); a kill -9 cannot tear a write either. So a record that does not check (magic, length, CRC-32C) is damage:
/// recovery finds no commit and the partition is refused — it never falls back to an older commit that would drop
/// acknowledged records.
/// <para>
/// The commit's data is durable before the record is written (the log's writes are synced), so the record is written
/// through the page cache: a kill -9 leaves it current, and after a power cut <see cref="LogTail"/> finds the entries
/// past an older one. That spares every commit a second device write and cache flush. The record is synced
/// (<see cref="DataSync"/>) by the first commit after opening (a new partition's first record, or the one that
/// replaces the commit files of before), by every commit that moves the log's begin (segments below it are deleted
/// next, which an older record would still name), once the log has grown <see cref="SyncEveryBytes"/> since the last
/// synced one (which bounds what recovery reads after a power cut), and on close.
/// </para>
/// Partitions written before this keep their commit files under <c>log-commits/</c>: they are read until the first
/// commit here, which then removes them.
/// </summary>
internal sealed class CommitRecord : ILogCommitManager
{
    public const string FileName = "commit.record";
    private const int Size = 512;
    private const uint Magic = 0x52435747; // "GWCR"
    private const int Header = 4 + 4 + 8 + 4; // magic, CRC (of what follows it), commit number, length

    private readonly string _path;
    private readonly string _legacyDirectory;
    private readonly byte[] _buffer = new byte[Size];
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _handle;
    private DeviceLogCommitCheckpointManager? _legacy;
    private bool _legacyOnDisk; // until the first commit here removes them (looked up once, not per commit)
    private long _syncedBegin = -1; // the begin and tail addresses of the last record synced; -1: none since opening
    private long _syncedUntil;
    private bool _unsynced; // a record was written since the last sync

    /// <summary>How far the log may grow past the last synced record before a commit syncs its record again.</summary>
    public const long SyncEveryBytes = 16L << 20;

    public CommitRecord(string directory)
    {
        _path = Path.Combine(directory, FileName);
        _legacyDirectory = Path.Combine(directory, "log-commits");
        _legacyOnDisk = Directory.Exists(_legacyDirectory);
    }

    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        if (Header + commitMetadata.Length > Size)
        {
            throw new IOException($"Commit metadata of {commitMetadata.Length} bytes does not fit the {Size}-byte commit record.");
        }
        var span = _buffer.AsSpan();
        span.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], commitNum);
        BinaryPrimitives.WriteInt32LittleEndian(span[16..], commitMetadata.Length);
        commitMetadata.CopyTo(span[Header..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], Crc32C.Compute(span[8..(Header + commitMetadata.Length)]));
        if (_handle is null)
        {
            bool created = !File.Exists(_path);
            _handle = File.OpenHandle(_path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, DataSync.Options);
            if (created)
            {
                DirectorySync.SyncParentOf(_path); // the first record of a new partition: its name must survive too
            }
        }
        if (forceWriteMetadata || _syncedBegin < 0 || beginAddress != _syncedBegin || untilAddress - _syncedUntil >= SyncEveryBytes)
        {
            DataSync.Write(_handle, _buffer, 0);
            (_syncedBegin, _syncedUntil, _unsynced) = (beginAddress, untilAddress, false);
        }
        else
        {
            RandomAccess.Write(_handle, _buffer, 0);
            _unsynced = true;
        }
        if (_legacyOnDisk)
        {
            // The record is on disk: the commit files of before are no longer read.
            _legacy?.Dispose();
            _legacy = null;
            Directory.Delete(_legacyDirectory, recursive: true);
            _legacyOnDisk = false;
        }
    }

    public byte[] GetCommitMetadata(long commitNum)
    {
        if (TryRead(out long number, out byte[] metadata))
        {
            return number == commitNum ? metadata : null!;
        }
        return Legacy()?.GetCommitMetadata(commitNum)!;
    }

    public IEnumerable<long> ListCommits()
    {
        if (TryRead(out long number, out _))
        {
            return [number];
        }
        // No record (or a damaged one: then there is no commit, and recovery refuses the partition's data).
        return File.Exists(_path) ? [] : Legacy()?.ListCommits() ?? [];
    }

    public void RemoveCommit(long commitNum)
    {
        if (TryRead(out long number, out _) && number == commitNum)
        {
            RemoveAllCommits();
        }
    }

    public void RemoveAllCommits()
    {
        _handle?.Dispose();
        _handle = null;
        File.Delete(_path);
    }

    public void OnRecovery(long commitNum)
    {
    }

    /// <summary>FasterLog's metadata in the record on disk, if there is one and it checks.</summary>
    internal bool TryReadRecovery(out FasterLogRecoveryInfo info)
    {
        info = default;
        if (!TryRead(out _, out byte[] metadata))
        {
            return false;
        }
        using var reader = new BinaryReader(new MemoryStream(metadata));
        info.Initialize(reader);
        return true;
    }

    /// <summary>Replaces the record with <paramref name="info"/>, synced.</summary>
    internal void Rewrite(FasterLogRecoveryInfo info) =>
        Commit(info.BeginAddress, info.UntilAddress, info.ToByteArray(), info.CommitNum, forceWriteMetadata: true);

    /// <summary>Syncs the record when a commit since the last sync wrote it through the page cache; throws when the sync fails.</summary>
    internal void Sync()
    {
        if (_unsynced && _handle is not null)
        {
            RandomAccess.FlushToDisk(_handle);
            _unsynced = false;
        }
    }

    public void Dispose()
    {
        if (_unsynced && _handle is not null)
        {
            try
            {
                // Only for the next start: a record older than the log's end costs it a longer read, nothing else.
                RandomAccess.FlushToDisk(_handle);
            }
            catch (IOException)
            {
            }
        }
        _unsynced = false;
        _handle?.Dispose();
        _handle = null;
        _legacy?.Dispose();
    }

    /// <summary>The record on disk, if it is whole and checks.</summary>
    private bool TryRead(out long commitNum, out byte[] metadata)
    {
        commitNum = 0;
        metadata = [];
        if (!File.Exists(_path))
        {
            return false;
        }
        byte[] record = new byte[Size];
        int read;
        using (var handle = File.OpenHandle(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            read = RandomAccess.Read(handle, record, 0);
        }
        var span = record.AsSpan(0, read);
        if (read < Header || BinaryPrimitives.ReadUInt32LittleEndian(span) != Magic)
        {
            return false;
        }
        int length = BinaryPrimitives.ReadInt32LittleEndian(span[16..]);
        if (length < 0 || Header + length > read || BinaryPrimitives.ReadUInt32LittleEndian(span[4..]) != Crc32C.Compute(span[8..(Header + length)]))
        {
            return false;
        }
        commitNum = BinaryPrimitives.ReadInt64LittleEndian(span[8..]);
        metadata = span.Slice(Header, length).ToArray();
        return true;
    }

    private DeviceLogCommitCheckpointManager? Legacy()
    {
        if (_legacy is null && _legacyOnDisk)
        {
            _legacy = new DeviceLogCommitCheckpointManager(
                new LocalStorageNamedDeviceFactory(), new DefaultCheckpointNamingScheme(Path.GetDirectoryName(_path)!), removeOutdated: true);
        }
        return _legacy;
    }
}
