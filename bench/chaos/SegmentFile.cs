using System.Buffers.Binary;

namespace Gateway.Chaos;

/// <summary>
/// Just enough of FasterLog's on-disk format to aim damage precisely. A segment file (<c>data.log.N</c>) holds log
/// addresses from 0; the log begins at address 64; every entry is a 12-byte header (8-byte checksum, 4-byte length,
/// with <c>LogChecksum = PerEntry</c>) and its payload (here one Kafka record batch), padded to 4 bytes; a zero
/// length is padding to the end of the page. The commit record (<c>commit.record</c>, the gateway's) has a 20-byte
/// header (magic, CRC-32C, commit number, length) and then FasterLog's metadata: a version, a checksum, the begin
/// address and the committed-until address (8 bytes each from the metadata's byte 4).
/// </summary>
internal static class SegmentFile
{
    public const int FirstAddress = 64;
    public const int HeaderBytes = 12;
    public const int UntilAddressOffset = 40;

    /// <summary>The entries of a segment holding one page (4 MiB by default): address and payload length of each.</summary>
    public static List<(long Address, int Length)> Entries(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var entries = new List<(long, int)>();
        long address = FirstAddress;
        while (address + HeaderBytes <= bytes.Length)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan((int)address + 8));
            if (length <= 0 || address + HeaderBytes + length > bytes.Length)
            {
                break;
            }
            entries.Add((address, length));
            address = End((address, length));
        }
        return entries;
    }

    /// <summary>The address after an entry (where the next one starts): header and payload, padded to 4 bytes.</summary>
    public static long End((long Address, int Length) entry) => (entry.Address + HeaderBytes + entry.Length + 3) & ~3L;

    /// <summary>The committed-until address recorded in the commit record.</summary>
    public static long UntilAddress(string commitFile) =>
        BinaryPrimitives.ReadInt64LittleEndian(File.ReadAllBytes(commitFile).AsSpan(UntilAddressOffset, 8));

    public static void FlipByte(string path, long position)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = position;
        int value = file.ReadByte();
        file.Position = position;
        file.WriteByte((byte)(value ^ 0xFF));
    }

    public static void WriteZeros(string path, long position, int count)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = position;
        file.Write(new byte[count]);
    }

    public static void WriteInt64(string path, long position, long value)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = position;
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        file.Write(bytes);
    }

    public static void Truncate(string path, long length)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.SetLength(length);
    }
}
