using System.Buffers.Binary;
using FASTER.core;
using Gateway.Log.Batches;

namespace Gateway.Log;

/// <summary>
/// FasterLog's commit metadata as one record of one sector, overwritten in place by each commit (a pwrite that
/// returns once the record is on disk: <see cref="DataSync"/>), instead of a new file per commit with the previous one
/// deleted (bench/commit_cost.py: 921 → 387 µs per commit here). A sector write is atomic (the assumption PostgreSQL's control file makes); a kill -9 cannot tear a
/// write either. So a record that does not check (magic, length, CRC-32C) is damage: recovery finds no commit and
/// the partition is refused — it never falls back to an older commit that would drop acknowledged records.
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
        _handle ??= File.OpenHandle(_path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, DataSync.Options);
        DataSync.Write(_handle, _buffer, 0);
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

    public void Dispose()
    {
        _handle?.Dispose();
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
