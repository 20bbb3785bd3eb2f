using System.Text;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.Log.Tests;

public sealed class BatchCodecTests
{
    [Fact]
    public void Crc32C_matches_the_published_check_value()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(-1L)]
    [InlineData(63L)]
    [InlineData(-64L)]
    [InlineData(300L)]
    [InlineData(long.MaxValue)]
    [InlineData(long.MinValue)]
    public void Varints_round_trip_with_the_size_they_announce(long value)
    {
        Span<byte> buffer = stackalloc byte[10];
        int written = Varint.Write(buffer, value);
        Assert.Equal(Varint.SizeOf(value), written);
        int position = 0;
        Assert.True(Varint.TryRead(buffer[..written], ref position, out long read));
        Assert.Equal(value, read);
        Assert.Equal(written, position);
    }

    [Fact]
    public void Zigzag_varints_match_kafka_encoding()
    {
        Span<byte> buffer = stackalloc byte[10];
        Assert.Equal(1, Varint.Write(buffer, -1));
        Assert.Equal(0x01, buffer[0]);
        Assert.Equal(2, Varint.Write(buffer, 64));
        Assert.Equal(new byte[] { 0x80, 0x01 }, buffer[..2].ToArray());
    }

    [Fact]
    public void A_batch_returns_every_record_as_it_was_added()
    {
        using var builder = new RecordBatchBuilder();
        builder.Add(1000, new Payload("user-1"u8, PayloadFormat.Text), new Payload("{\"a\": [1, 2]}"u8, PayloadFormat.Json), [new RecordHeader("trace", "abc"u8.ToArray()), new RecordHeader("empty", null)]);
        builder.Add(990, Payload.Null, Payload.Null, null);
        builder.Add(1500, new Payload([0, 255, 7], PayloadFormat.Binary), new Payload([], PayloadFormat.Binary), null);
        builder.Seal();
        var batch = new RecordBatch(builder.SealedBatch(40).ToArray());

        Assert.True(RecordBatch.TryValidate(batch.Bytes.Span, out _));
        Assert.Equal(40, batch.BaseOffset);
        Assert.Equal(3, batch.Count);
        Assert.Equal(43, batch.NextOffset);
        Assert.Equal(1500, batch.MaxTimestamp);

        var records = new List<string>();
        foreach (var record in batch)
        {
            var headers = new StringBuilder();
            foreach (var header in record.Headers)
            {
                headers.Append(header.Name).Append('=').Append(header.ValueIsNull ? "null" : Encoding.UTF8.GetString(header.Value)).Append(';');
            }
            records.Add($"{record.Offset}|{record.Timestamp}|{record.KeyFormat}:{(record.KeyIsNull ? "null" : Convert.ToHexString(record.Key))}|{record.ValueFormat}:{(record.ValueIsNull ? "null" : Convert.ToHexString(record.Value))}|{headers}");
        }
        Assert.Equal(
            [
                $"40|1000|Text:{Convert.ToHexString("user-1"u8)}|Json:{Convert.ToHexString("{\"a\": [1, 2]}"u8)}|trace=abc;empty=null;",
                "41|990|Binary:null|Binary:null|",
                "42|1500|Binary:00FF07|Binary:|",
            ],
            records);
    }

    [Fact]
    public void The_crc_catches_a_flipped_byte_anywhere_it_covers()
    {
        using var builder = new RecordBatchBuilder();
        builder.Add(1, Payload.Null, new Payload("payload"u8, PayloadFormat.Text), null);
        builder.Seal();
        byte[] bytes = builder.SealedBatch(0).ToArray();
        for (int i = BatchLayout.CrcStart; i < bytes.Length; i++)
        {
            byte[] damaged = (byte[])bytes.Clone();
            damaged[i] ^= 0x10;
            Assert.False(RecordBatch.TryValidate(damaged, out _));
        }
    }

    [Fact]
    public void The_base_offset_is_outside_the_crc_so_the_log_can_assign_it()
    {
        using var builder = new RecordBatchBuilder();
        builder.Add(1, Payload.Null, new Payload("x"u8, PayloadFormat.Text), null);
        builder.Seal();
        Assert.True(RecordBatch.TryValidate(builder.SealedBatch(123456).ToArray(), out _));
    }

    [Fact]
    public void The_header_follows_kafka_record_batch_v2()
    {
        using var builder = new RecordBatchBuilder();
        builder.Add(5, Payload.Null, new Payload("x"u8, PayloadFormat.Text), null);
        builder.Add(7, Payload.Null, new Payload("y"u8, PayloadFormat.Text), null);
        builder.Seal();
        byte[] bytes = builder.SealedBatch(9).ToArray();
        Assert.Equal(2, bytes[16]); // magic
        Assert.Equal(bytes.Length - 12, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(8)));
        Assert.Equal(1, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(23))); // lastOffsetDelta
        Assert.Equal(-1L, System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(43))); // producerId
        Assert.Equal(2, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(57))); // recordsCount
    }
}
