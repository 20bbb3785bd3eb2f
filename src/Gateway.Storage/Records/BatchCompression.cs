using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using K4os.Compression.LZ4.Streams;
using Snappier;
using ZstdSharp;

namespace Gateway.Storage.Records;

/// <summary>Compressed records that decompress to more than the limit allows (a bomb, or records larger than the topic takes).</summary>
public sealed class DecompressedTooLargeException(string message) : Exception(message);

/// <summary>The compression of a record batch's records (the low three bits of its attributes), as Kafka numbers them.</summary>
public enum CompressionCodec
{
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

/// <summary>
/// Decompresses the records of a Kafka producer's compressed batch: gzip (the framework's), snappy (Snappier; raw, or
/// in the xerial framing Java producers write), lz4 (K4os; the LZ4 frame format of magic v2 batches) and zstd
/// (ZstdSharp). A batch is stored and served to Kafka consumers as it came; only readers of single records (HTTP,
/// SSE, lookups by timestamp) decompress it.
/// </summary>
public static class BatchCompression
{
    /// <summary>The most a batch's records may decompress to: a bound for bombs, far above any batch a broker takes.</summary>
    public const int MaxDecompressedBytes = 256 * 1024 * 1024;

    private static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];

    public static bool IsKnown(CompressionCodec codec) => codec is >= CompressionCodec.None and <= CompressionCodec.Zstd;

    /// <summary>
    /// The decompressed records of <paramref name="compressed"/>, in pooled memory the caller disposes; at most
    /// <paramref name="limit"/> bytes. <see cref="InvalidDataException"/> when they do not decompress,
    /// <see cref="DecompressedTooLargeException"/> when they are larger.
    /// </summary>
    public static IMemoryOwner<byte> Decompress(CompressionCodec codec, ReadOnlyMemory<byte> compressed, int limit, out int length)
    {
        try
        {
            switch (codec)
            {
                case CompressionCodec.Gzip:
                    using (var gzip = new GZipStream(AsStream(compressed), CompressionMode.Decompress))
                    {
                        return ReadAll(gzip, limit, out length);
                    }
                case CompressionCodec.Lz4:
                    using (var lz4 = LZ4Stream.Decode(AsStream(compressed)))
                    {
                        return ReadAll(lz4, limit, out length);
                    }
                case CompressionCodec.Zstd:
                    using (var zstd = new DecompressionStream(AsStream(compressed)))
                    {
                        return ReadAll(zstd, limit, out length);
                    }
                case CompressionCodec.Snappy:
                    return DecompressSnappy(compressed.Span, limit, out length);
                default:
                    throw new InvalidDataException($"compression codec {(int)codec} is not one of Kafka's");
            }
        }
        catch (Exception ex) when (ex is not InvalidDataException and not DecompressedTooLargeException and not OutOfMemoryException)
        {
            // Each library words a damaged input its own way (IOException, ArgumentException, its own types).
            throw new InvalidDataException($"the {codec.ToString().ToLowerInvariant()} records do not decompress: {ex.Message}", ex);
        }
    }

    private static PooledBuffer DecompressSnappy(ReadOnlySpan<byte> compressed, int limit, out int length)
    {
        if (!compressed.StartsWith(XerialMagic))
        {
            int size = Snappy.GetUncompressedLength(compressed);
            CheckLimit(size, limit);
            var owner = new PooledBuffer(size);
            length = Snappy.Decompress(compressed, owner.Array);
            return owner;
        }
        // Xerial framing: magic, version and compatible version (4 bytes each), then blocks of [int32 length][raw snappy].
        int position = XerialMagic.Length + 8;
        var output = new PooledBuffer(Math.Min(limit, Math.Max(compressed.Length * 4, 1024)));
        length = 0;
        try
        {
            while (position < compressed.Length)
            {
                if (compressed.Length - position < 4)
                {
                    throw new InvalidDataException("a snappy block's length is cut short");
                }
                int blockLength = BinaryPrimitives.ReadInt32BigEndian(compressed[position..]);
                position += 4;
                if (blockLength < 0 || blockLength > compressed.Length - position)
                {
                    throw new InvalidDataException($"a snappy block of {blockLength} bytes does not fit");
                }
                var block = compressed.Slice(position, blockLength);
                position += blockLength;
                int size = Snappy.GetUncompressedLength(block);
                CheckLimit((long)length + size, limit);
                output.EnsureCapacity(length + size, limit);
                length += Snappy.Decompress(block, output.Array.AsSpan(length));
            }
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    private static PooledBuffer ReadAll(Stream stream, int limit, out int length)
    {
        var output = new PooledBuffer(64 * 1024);
        length = 0;
        try
        {
            while (true)
            {
                if (length == output.Array.Length)
                {
                    CheckLimit((long)length + 1, limit);
                    output.EnsureCapacity(length + 1, limit);
                }
                int read = stream.Read(output.Array, length, Math.Min(output.Array.Length, limit + 1) - length);
                if (read == 0)
                {
                    return output;
                }
                length += read;
                CheckLimit(length, limit);
            }
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    private static void CheckLimit(long size, int limit)
    {
        if (size > limit)
        {
            throw new DecompressedTooLargeException($"the records decompress to more than {limit} bytes");
        }
    }

    private static MemoryStream AsStream(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(memory.ToArray(), writable: false);

    /// <summary>An array from the shared pool that can grow, handed out as memory the caller disposes.</summary>
    private sealed class PooledBuffer(int size) : IMemoryOwner<byte>
    {
        public byte[] Array { get; private set; } = ArrayPool<byte>.Shared.Rent(size);

        public Memory<byte> Memory => Array;

        public void EnsureCapacity(int needed, int limit)
        {
            if (needed <= Array.Length)
            {
                return;
            }
            int size = (int)Math.Min(Math.Max((long)Array.Length * 2, needed), Math.Max(limit, needed));
            byte[] larger = ArrayPool<byte>.Shared.Rent(size);
            Array.AsSpan().CopyTo(larger);
            ArrayPool<byte>.Shared.Return(Array);
            Array = larger;
        }

        public void Dispose()
        {
            if (Array.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(Array);
                Array = [];
            }
        }
    }
}
