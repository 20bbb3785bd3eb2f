using System.Buffers.Binary;
using Gateway.Log.Device;
using Gateway.Storage.Records;

namespace Gateway.Log;

/// <summary>
/// Left by a partition whose log was closed at rest (idle, or on a graceful stop): the commit it closed at and what a
/// reader asks of a partition without opening its log. The next start takes a partition whose marker matches its commit
/// record for at rest, and recovers it only when it is first used. The marker is removed before the log opens again,
/// and the first commit after that syncs a new commit record, so after a kill or a power cut a marker matches its
/// record only where nothing was written since. Checked by its own CRC; a missing or damaged marker only means the
/// partition is recovered at start, as before (but for a partition nothing was ever committed to, whose first commit
/// record says so by itself).
/// </summary>
internal sealed record RestMarker(long Address, long NextOffset, long BeginAddress, long MaxTimestamp, long? OldestTimestamp)
{
    public const string FileName = "rest.marker";

    private const uint Magic = 0x47575253; // "GWRS"
    private const int Bytes = 4 + 8 + 8 + 8 + 8 + 1 + 8 + 4;

    public static RestMarker? Load(string directory)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(Path.Combine(directory, FileName));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        var span = bytes.AsSpan();
        if (bytes.Length != Bytes || BinaryPrimitives.ReadUInt32LittleEndian(span) != Magic
            || BinaryPrimitives.ReadUInt32LittleEndian(span[(Bytes - 4)..]) != Crc32C.Compute(span[..(Bytes - 4)]))
        {
            return null;
        }
        var marker = new RestMarker(
            BinaryPrimitives.ReadInt64LittleEndian(span[4..]),
            BinaryPrimitives.ReadInt64LittleEndian(span[12..]),
            BinaryPrimitives.ReadInt64LittleEndian(span[20..]),
            BinaryPrimitives.ReadInt64LittleEndian(span[28..]),
            span[36] == 1 ? BinaryPrimitives.ReadInt64LittleEndian(span[37..]) : null);
        return marker.Address < marker.BeginAddress || marker.NextOffset < 0 ? null : marker;
    }

    /// <summary>Writes the marker atomically and durably.</summary>
    public void Save(string directory)
    {
        var bytes = new byte[Bytes];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteInt64LittleEndian(span[4..], Address);
        BinaryPrimitives.WriteInt64LittleEndian(span[12..], NextOffset);
        BinaryPrimitives.WriteInt64LittleEndian(span[20..], BeginAddress);
        BinaryPrimitives.WriteInt64LittleEndian(span[28..], MaxTimestamp);
        span[36] = OldestTimestamp is null ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteInt64LittleEndian(span[37..], OldestTimestamp ?? 0);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(Bytes - 4)..], Crc32C.Compute(span[..(Bytes - 4)]));
        AtomicFile.Write(Path.Combine(directory, FileName), bytes);
    }

    /// <summary>
    /// Removes the marker of <paramref name="directory"/>, when there is one, without syncing the removal: a marker
    /// names the commit record it was written at, and the first commit after the log opens syncs a new record
    /// (<see cref="CommitRecord"/>), so a marker that outlives its removal matches nothing written since.
    /// </summary>
    public static void Delete(string directory)
    {
        File.Delete(Path.Combine(directory, FileName));
    }
}
