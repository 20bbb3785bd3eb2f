using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Gateway.Storage;
using Gateway.Storage.Records;
using K4os.Compression.LZ4.Streams;
using Snappier;

namespace Gateway.Log.Tests;

/// <summary>
/// Kafka producers' compressed batches: each codec decompresses (snappy raw and in Java's xerial framing), damaged
/// data and bombs are refused, and the log stores a compressed batch as it came, serves it whole to Kafka readers and
/// record by record to everyone else, across a restart.
/// </summary>
public sealed class CompressionTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<CompressionCodec> Codecs => [CompressionCodec.Gzip, CompressionCodec.Snappy, CompressionCodec.Lz4, CompressionCodec.Zstd];

    /// <summary>Compresses as Kafka producers do (snappy: raw, as librdkafka writes it; <paramref name="xerial"/>: as Java writes it).</summary>
    internal static byte[] Compress(CompressionCodec codec, byte[] data, bool xerial = false)
    {
        var output = new MemoryStream();
        switch (codec)
        {
            case CompressionCodec.Gzip:
                using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
                {
                    gzip.Write(data);
                }
                break;
            case CompressionCodec.Lz4:
                using (var lz4 = LZ4Stream.Encode(output, leaveOpen: true))
                {
                    lz4.Write(data);
                }
                break;
            case CompressionCodec.Zstd:
                using (var zstd = new ZstdSharp.Compressor())
                {
                    output.Write(zstd.Wrap(data));
                }
                break;
            case CompressionCodec.Snappy when !xerial:
                output.Write(Snappy.CompressToArray(data));
                break;
            case CompressionCodec.Snappy:
                output.Write([0x82, .. "SNAPPY"u8, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
                for (int at = 0; at < data.Length; at += 1000) // small blocks, to cross several
                {
                    byte[] block = Snappy.CompressToArray(data.AsSpan(at, Math.Min(1000, data.Length - at)));
                    byte[] length = new byte[4];
                    BinaryPrimitives.WriteInt32BigEndian(length, block.Length);
                    output.Write(length);
                    output.Write(block);
                }
                break;
        }
        return output.ToArray();
    }

    /// <summary>A batch of these values compressed with <paramref name="codec"/>, as a Kafka producer sends it.</summary>
    internal static byte[] CompressedBatch(CompressionCodec codec, long timestamp, string[] values, bool xerial = false)
    {
        byte[] plain;
        using (var builder = LogFixture.Batch(timestamp, values))
        {
            builder.Seal();
            plain = builder.SealedBatch(0).ToArray();
        }
        byte[] records = Compress(codec, plain[BatchLayout.HeaderSize..], xerial);
        byte[] batch = [.. plain.AsSpan(0, BatchLayout.HeaderSize), .. records];
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(BatchLayout.BatchLength), batch.Length - 12);
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(BatchLayout.Attributes), (short)codec);
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(BatchLayout.Crc), Crc32C.Compute(batch.AsSpan(BatchLayout.CrcStart)));
        return batch;
    }

    private static string[] Values(int count, int from = 0) => [.. Enumerable.Range(from, count).Select(i => $"value {i} " + new string((char)('a' + (i % 26)), 300))];

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Every_codec_decompresses_what_a_producer_compressed(CompressionCodec codec)
    {
        byte[] data = Encoding.UTF8.GetBytes(string.Join('\n', Values(200)));
        using var owner = BatchCompression.Decompress(codec, Compress(codec, data), 1 << 20, out int length);
        Assert.Equal(data, owner.Memory[..length].ToArray());
    }

    [Fact]
    public void Snappy_in_Javas_xerial_framing_decompresses_block_by_block()
    {
        byte[] data = Encoding.UTF8.GetBytes(string.Join('\n', Values(50)));
        using var owner = BatchCompression.Decompress(CompressionCodec.Snappy, Compress(CompressionCodec.Snappy, data, xerial: true), 1 << 20, out int length);
        Assert.Equal(data, owner.Memory[..length].ToArray());
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Damaged_data_and_bombs_are_refused_as_invalid_data(CompressionCodec codec)
    {
        byte[] compressed = Compress(codec, new byte[100_000]);
        Assert.Throws<DecompressedTooLargeException>(() => BatchCompression.Decompress(codec, compressed, 10_000, out _).Dispose());
        byte[] damaged = [.. compressed[..(compressed.Length / 2)], .. new byte[7]];
        Assert.Throws<InvalidDataException>(() => BatchCompression.Decompress(codec, damaged, 1 << 20, out _).Dispose());
        Assert.Throws<InvalidDataException>(() => BatchCompression.Decompress(codec, "not compressed at all"u8.ToArray(), 1 << 20, out _).Dispose());
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void An_incoming_compressed_batch_is_checked_record_by_record(CompressionCodec codec)
    {
        byte[] batch = CompressedBatch(codec, 1000, Values(10));
        Assert.True(IncomingBatch.Validate(batch, 1 << 20, out string detail) == IncomingBatchError.None, detail);
        Assert.Equal(IncomingBatchError.RecordTooLarge, IncomingBatch.Validate(batch, 100, out _));

        // Records that do not parse inside data that decompresses: compressed garbage under a correct CRC.
        byte[] garbage = CompressedBatch(codec, 1000, ["x"]);
        byte[] junk = Compress(codec, [.. Enumerable.Repeat((byte)0x7F, 40)]);
        byte[] bad = [.. garbage.AsSpan(0, BatchLayout.HeaderSize), .. junk];
        BinaryPrimitives.WriteInt32BigEndian(bad.AsSpan(BatchLayout.BatchLength), bad.Length - 12);
        BinaryPrimitives.WriteUInt32BigEndian(bad.AsSpan(BatchLayout.Crc), Crc32C.Compute(bad.AsSpan(BatchLayout.CrcStart)));
        Assert.NotEqual(IncomingBatchError.None, IncomingBatch.Validate(bad, 1 << 20, out _));

        byte[] unknown = CompressedBatch(codec, 1000, ["x"]);
        BinaryPrimitives.WriteInt16BigEndian(unknown.AsSpan(BatchLayout.Attributes), 5);
        BinaryPrimitives.WriteUInt32BigEndian(unknown.AsSpan(BatchLayout.Crc), Crc32C.Compute(unknown.AsSpan(BatchLayout.CrcStart)));
        Assert.Equal(IncomingBatchError.UnsupportedCompression, IncomingBatch.Validate(unknown, 1 << 20, out _));
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public async Task A_compressed_batch_is_stored_as_it_came_and_read_record_by_record_also_after_a_restart(CompressionCodec codec)
    {
        byte[] first = CompressedBatch(codec, 2000, Values(20), xerial: codec == CompressionCodec.Snappy);
        byte[] second = CompressedBatch(codec, 3000, Values(5, 20));
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path)))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            await LogFixture.AppendAsync(partition, Acks.Disk, "plain");
            foreach (byte[] batch in new[] { first, second })
            {
                using var builder = RecordBatchBuilder.FromValidatedBatch(batch);
                await partition.AppendAsync(builder, Acks.Disk);
            }
            AssertServes(partition);
        }
        await using var reopened = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        AssertServes(reopened.GetTopic("t").GetPartition(0));

        void AssertServes(PartitionLog partition)
        {
            Assert.Equal(26, partition.EndOffset);
            Assert.Equal(["plain", .. Values(25)], LogFixture.ReadAll(partition, 0).Select(r => r.Value));
            // A read inside a compressed batch: its records from the offset on, the limit counted in records.
            Assert.Equal([5L, 6L, 7L], LogFixture.ReadAll(partition, 5, maxRecords: 3).Select(r => r.Offset));
            using (var set = partition.Read(5, 3, int.MaxValue))
            {
                Assert.Equal(8, set.NextOffset);
                // The batch as stored, for a Kafka fetch: compressed, base offset set by the log.
                var stored = set.BatchAt(0);
                Assert.Equal(codec, stored.Compression);
                Assert.Equal(1, stored.BaseOffset);
                Assert.Equal(first.AsSpan(BatchLayout.Attributes).ToArray(), stored.Bytes.Span[BatchLayout.Attributes..].ToArray());
            }
            Assert.Equal(21, partition.OffsetForTimestamp(3000));
            Assert.Equal(1, partition.OffsetForTimestamp(1500));
        }
    }
}
