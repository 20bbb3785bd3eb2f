using System.Buffers.Binary;
using Gateway.Log.Device;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.Log;

/// <summary>
/// Kafka's recovery point for one partition: what a scan of the committed log up to <see cref="Address"/> would
/// rebuild — the next offset there, the largest timestamp below it, the remembered Idempotency-Keys and the Kafka
/// idempotent producers' last batches — so a
/// restart scans only the log after it. Written after a commit that covers <see cref="Address"/> (never ahead of
/// the durable log), replaced atomically, checked by its own CRC; a missing, damaged or inconsistent checkpoint
/// only means a longer recovery, never a different one.
/// </summary>
internal sealed record RecoveryCheckpoint(long Address, long NextOffset, long MaxTimestamp, IReadOnlyList<RememberedBatch> Batches, IReadOnlyList<KeptBatch> Producers)
{
    public const string FileName = "recovery.checkpoint";

    private const uint Magic = 0x47575243; // "GWRC"
    private const int Version = 2; // 2 added the producers; a version 1 file (written before Kafka producers) has none
    private const int HeaderBytes = 4 + 4 + 8 + 8 + 8 + 4;
    private const int BatchBytes = 8 + 8 + 8 + 4;
    private const int ProducerBatchBytes = 8 + 2 + 4 + 4 + 8;

    /// <summary>The checkpoint in <paramref name="directory"/>, or null when there is none or it fails its checks.</summary>
    public static RecoveryCheckpoint? Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        if (bytes.Length < HeaderBytes + 4)
        {
            return null;
        }
        var span = bytes.AsSpan();
        int body = bytes.Length - 4;
        int version = BinaryPrimitives.ReadInt32LittleEndian(span[4..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(span[body..]) != Crc32C.Compute(span[..body])
            || BinaryPrimitives.ReadUInt32LittleEndian(span) != Magic
            || version is not (1 or Version))
        {
            return null;
        }
        long address = BinaryPrimitives.ReadInt64LittleEndian(span[8..]);
        long nextOffset = BinaryPrimitives.ReadInt64LittleEndian(span[16..]);
        long maxTimestamp = BinaryPrimitives.ReadInt64LittleEndian(span[24..]);
        int count = BinaryPrimitives.ReadInt32LittleEndian(span[32..]);
        long batchesEnd = HeaderBytes + ((long)count * BatchBytes);
        if (address < 0 || nextOffset < 0 || count < 0 || batchesEnd > body || (version == 1 && batchesEnd != body))
        {
            return null;
        }
        var batches = new RememberedBatch[count];
        for (int i = 0, at = HeaderBytes; i < count; i++, at += BatchBytes)
        {
            batches[i] = new RememberedBatch(
                new IdempotencyStamp(BinaryPrimitives.ReadInt64LittleEndian(span[at..]), BinaryPrimitives.ReadInt64LittleEndian(span[(at + 8)..])),
                BinaryPrimitives.ReadInt64LittleEndian(span[(at + 16)..]),
                BinaryPrimitives.ReadInt32LittleEndian(span[(at + 24)..]));
        }
        var producers = new List<KeptBatch>();
        if (version >= 2)
        {
            int at = (int)batchesEnd;
            if (body - at < 4)
            {
                return null;
            }
            int producerCount = BinaryPrimitives.ReadInt32LittleEndian(span[at..]);
            at += 4;
            if (producerCount < 0 || at + ((long)producerCount * ProducerBatchBytes) != body)
            {
                return null;
            }
            for (int i = 0; i < producerCount; i++, at += ProducerBatchBytes)
            {
                producers.Add(new KeptBatch(
                    new ProducerBatch(
                        BinaryPrimitives.ReadInt64LittleEndian(span[at..]),
                        BinaryPrimitives.ReadInt16LittleEndian(span[(at + 8)..]),
                        BinaryPrimitives.ReadInt32LittleEndian(span[(at + 10)..]),
                        BinaryPrimitives.ReadInt32LittleEndian(span[(at + 14)..])),
                    BinaryPrimitives.ReadInt64LittleEndian(span[(at + 18)..])));
            }
        }
        return new RecoveryCheckpoint(address, nextOffset, maxTimestamp, batches, producers);
    }

    /// <summary>Replaces the checkpoint in <paramref name="directory"/> (temp file, fsync, rename).</summary>
    public void Save(string directory)
    {
        byte[] bytes = new byte[HeaderBytes + (Batches.Count * BatchBytes) + 4 + (Producers.Count * ProducerBatchBytes) + 4];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], Address);
        BinaryPrimitives.WriteInt64LittleEndian(span[16..], NextOffset);
        BinaryPrimitives.WriteInt64LittleEndian(span[24..], MaxTimestamp);
        BinaryPrimitives.WriteInt32LittleEndian(span[32..], Batches.Count);
        int at = HeaderBytes;
        foreach (var batch in Batches)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], batch.Stamp.ProducerId);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 8)..], batch.Stamp.RequestHash);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 16)..], batch.BaseOffset);
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 24)..], batch.Count);
            at += BatchBytes;
        }
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], Producers.Count);
        at += 4;
        foreach (var kept in Producers)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], kept.Batch.ProducerId);
            BinaryPrimitives.WriteInt16LittleEndian(span[(at + 8)..], kept.Batch.Epoch);
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 10)..], kept.Batch.BaseSequence);
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 14)..], kept.Batch.Count);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 18)..], kept.BaseOffset);
            at += ProducerBatchBytes;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(span[at..], Crc32C.Compute(span[..at]));
        AtomicFile.Write(Path.Combine(directory, FileName), bytes);
    }
}

/// <summary>An idempotent append the partition remembers: the key's stamp and where its records went.</summary>
internal readonly record struct RememberedBatch(IdempotencyStamp Stamp, long BaseOffset, int Count);
