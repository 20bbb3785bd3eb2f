using System.Buffers.Binary;
using System.Text;

namespace Gateway.Server.Tests.Kafka;

/// <summary>Kafka requests built by hand, for tests at the byte level.</summary>
internal static class KafkaFrames
{
    /// <summary>A produce v7 body: no transactional id, acks=-1, one topic, one partition, these record bytes.</summary>
    public static byte[] ProduceBody(string topic, int partition, byte[] records)
    {
        var body = new List<byte> { 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x13, 0x88, 0, 0, 0, 1 };
        body.AddRange([(byte)(topic.Length >> 8), (byte)topic.Length, .. Encoding.UTF8.GetBytes(topic)]);
        body.AddRange([0, 0, 0, 1]);
        body.AddRange(BigEndian(partition));
        body.AddRange(BigEndian(records.Length));
        body.AddRange(records);
        return [.. body];
    }

    /// <summary>An InitProducerId v1 body: this transactional id (null for an idempotent producer), timeout 60 s.</summary>
    public static byte[] InitProducerIdBody(string? transactionalId = null)
    {
        var body = new List<byte>();
        if (transactionalId is null)
        {
            body.AddRange([0xFF, 0xFF]);
        }
        else
        {
            body.AddRange([(byte)(transactionalId.Length >> 8), (byte)transactionalId.Length, .. Encoding.UTF8.GetBytes(transactionalId)]);
        }
        body.AddRange(BigEndian(60_000));
        return [.. body];
    }

    /// <summary>
    /// A v2 batch of one record with this value, as a Kafka producer writes it (CRC-32C over attributes onward); with a
    /// producer id, as an idempotent producer writes it.
    /// </summary>
    public static byte[] OneRecordBatch(ReadOnlySpan<byte> value, long producerId = -1, short epoch = -1, int sequence = -1)
    {
        var record = new List<byte> { 0 };          // attributes
        record.AddRange([0, 0]);                     // timestamp delta 0, offset delta 0
        record.Add(1);                               // key: null (zigzag -1)
        record.Add((byte)(value.Length << 1));       // value length (zigzag)
        record.AddRange(value.ToArray());
        record.Add(0);                               // no headers
        var records = new List<byte> { (byte)(record.Count << 1) };
        records.AddRange(record);

        var batch = new byte[61 + records.Count];
        BinaryPrimitives.WriteInt64BigEndian(batch, 0);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(8), batch.Length - 12);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(12), -1);
        batch[16] = 2;
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(23), 0);                  // last offset delta
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(27), 1_700_000_000_000); // base timestamp
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(35), 1_700_000_000_000); // max timestamp
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(43), producerId);
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(51), epoch);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(53), sequence);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(57), 1);                  // one record
        records.CopyTo(batch, 61);
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(17), Crc32C(batch.AsSpan(21)));
        return batch;
    }

    /// <summary>The error code and base offset of the one partition in a produce v7 answer for <paramref name="topic"/>.</summary>
    public static (short Error, long BaseOffset) ProduceResult(byte[] answer, string topic)
    {
        // responses[1] { name, partitions[1] { index, error_code, base_offset, ... } }
        int p = 4 + 2 + topic.Length + 4 + 4;
        return (BinaryPrimitives.ReadInt16BigEndian(answer.AsSpan(p)), BinaryPrimitives.ReadInt64BigEndian(answer.AsSpan(p + 2)));
    }

    /// <summary>The error code, producer id and epoch of an InitProducerId v1 answer.</summary>
    public static (short Error, long ProducerId, short Epoch) InitProducerIdResult(byte[] answer) =>
        (BinaryPrimitives.ReadInt16BigEndian(answer.AsSpan(4)), BinaryPrimitives.ReadInt64BigEndian(answer.AsSpan(6)), BinaryPrimitives.ReadInt16BigEndian(answer.AsSpan(14)));

    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
            }
        }
        return ~crc;
    }

    public static byte[] BigEndian(int value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        return bytes;
    }

}
