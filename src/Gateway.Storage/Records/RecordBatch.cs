using System.Buffers;
using System.Buffers.Binary;

namespace Gateway.Storage.Records;

/// <summary>
/// A read-only view of one stored record batch (Kafka v2 layout). <see cref="TryValidate"/> checks the header and
/// the CRC-32C; the record enumerator then walks the records in offset order. The records of a compressed batch (a
/// Kafka producer's) are walked once they are decompressed (<see cref="Readable"/>); <see cref="Bytes"/> stays
/// the batch as stored.
/// </summary>
public readonly struct RecordBatch
{
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly ReadOnlyMemory<byte> _decompressed;
    private readonly bool _hasDecompressed;

    public RecordBatch(ReadOnlyMemory<byte> bytes)
    {
        _bytes = bytes;
    }

    private RecordBatch(ReadOnlyMemory<byte> bytes, ReadOnlyMemory<byte> decompressed)
    {
        _bytes = bytes;
        _decompressed = decompressed;
        _hasDecompressed = true;
    }

    /// <summary>The batch as stored (and as a Kafka consumer receives it).</summary>
    public ReadOnlyMemory<byte> Bytes => _bytes;

    public CompressionCodec Compression => (CompressionCodec)(BinaryPrimitives.ReadInt16BigEndian(_bytes.Span[BatchLayout.Attributes..]) & 0x07);

    /// <summary>Whether the records can be walked now: they are not compressed, or were decompressed.</summary>
    public bool RecordsReadable => _hasDecompressed || Compression == CompressionCodec.None;

    /// <summary>
    /// This batch with its records readable: itself when they are not compressed, else decompressed into pooled
    /// memory put in <paramref name="owner"/> (null when none was needed). A stored batch that does not decompress is
    /// the log's corruption.
    /// </summary>
    public RecordBatch Readable(out IMemoryOwner<byte>? owner)
    {
        owner = null;
        if (RecordsReadable)
        {
            return this;
        }
        try
        {
            owner = BatchCompression.Decompress(Compression, _bytes[BatchLayout.HeaderSize..], BatchCompression.MaxDecompressedBytes, out int length);
            return new RecordBatch(_bytes, owner.Memory[..length]);
        }
        catch (Exception ex) when (ex is InvalidDataException or DecompressedTooLargeException)
        {
            throw new LogCorruptedException($"A stored batch at offset {BaseOffset} does not decompress: {ex.Message}", ex);
        }
    }

    public long BaseOffset => BinaryPrimitives.ReadInt64BigEndian(_bytes.Span[BatchLayout.BaseOffset..]);

    public int Count => BinaryPrimitives.ReadInt32BigEndian(_bytes.Span[BatchLayout.RecordsCount..]);

    /// <summary>The offset after the batch's last record.</summary>
    /// <summary>The bytes its records take as stored: for a batch whose records are readable, the sum of their <see cref="LogRecord.EncodedSize"/>.</summary>
    public int RecordBytes => _bytes.Length - BatchLayout.HeaderSize;

    public long NextOffset => BaseOffset + BinaryPrimitives.ReadInt32BigEndian(_bytes.Span[BatchLayout.LastOffsetDelta..]) + 1;

    public long BaseTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes.Span[BatchLayout.BaseTimestamp..]);

    public long MaxTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes.Span[BatchLayout.MaxTimestamp..]);

    /// <summary>The HTTP idempotency stamp the batch was appended under, if any.</summary>
    public IdempotencyStamp? Stamp
    {
        get
        {
            long producerId = BinaryPrimitives.ReadInt64BigEndian(_bytes.Span[BatchLayout.ProducerId..]);
            if (producerId < ProducerBatch.ProducerIdLimit)
            {
                return null;
            }
            long high = (ushort)BinaryPrimitives.ReadInt16BigEndian(_bytes.Span[BatchLayout.ProducerEpoch..]);
            long low = (uint)BinaryPrimitives.ReadInt32BigEndian(_bytes.Span[BatchLayout.BaseSequence..]);
            return new IdempotencyStamp(producerId, (high << 32) | low);
        }
    }

    /// <summary>The Kafka idempotent producer that sent the batch, if any.</summary>
    public ProducerBatch? Producer => ProducerOf(_bytes.Span);

    /// <summary>The Kafka idempotent producer named by a batch header, if any.</summary>
    public static ProducerBatch? ProducerOf(ReadOnlySpan<byte> batch)
    {
        long producerId = BinaryPrimitives.ReadInt64BigEndian(batch[BatchLayout.ProducerId..]);
        if (producerId is < 0 or >= ProducerBatch.ProducerIdLimit)
        {
            return null;
        }
        return new ProducerBatch(
            producerId,
            BinaryPrimitives.ReadInt16BigEndian(batch[BatchLayout.ProducerEpoch..]),
            BinaryPrimitives.ReadInt32BigEndian(batch[BatchLayout.BaseSequence..]),
            BinaryPrimitives.ReadInt32BigEndian(batch[BatchLayout.RecordsCount..]));
    }

    /// <summary>Checks that the bytes form one complete batch of this layout whose CRC matches.</summary>
    public static bool TryValidate(ReadOnlySpan<byte> bytes, out string error)
    {
        if (bytes.Length < BatchLayout.HeaderSize)
        {
            error = $"entry of {bytes.Length} bytes is shorter than a batch header";
            return false;
        }
        int batchLength = BinaryPrimitives.ReadInt32BigEndian(bytes[BatchLayout.BatchLength..]);
        if (batchLength != bytes.Length - BatchLayout.LengthFieldEnd)
        {
            error = $"batch length {batchLength} does not match an entry of {bytes.Length} bytes";
            return false;
        }
        if (bytes[BatchLayout.Magic] != BatchLayout.CurrentMagic)
        {
            error = $"unknown batch magic {bytes[BatchLayout.Magic]}";
            return false;
        }
        uint stored = BinaryPrimitives.ReadUInt32BigEndian(bytes[BatchLayout.Crc..]);
        uint computed = Crc32C.Compute(bytes[BatchLayout.CrcStart..]);
        if (stored != computed)
        {
            error = $"CRC-32C mismatch (stored {stored:x8}, computed {computed:x8})";
            return false;
        }
        int count = BinaryPrimitives.ReadInt32BigEndian(bytes[BatchLayout.RecordsCount..]);
        int lastOffsetDelta = BinaryPrimitives.ReadInt32BigEndian(bytes[BatchLayout.LastOffsetDelta..]);
        if (count <= 0 || lastOffsetDelta != count - 1)
        {
            error = $"record count {count} disagrees with last offset delta {lastOffsetDelta}";
            return false;
        }
        error = "";
        return true;
    }

    public Enumerator GetEnumerator() => RecordsReadable
        ? new(_hasDecompressed ? _decompressed.Span : _bytes.Span[BatchLayout.HeaderSize..], BaseOffset, BaseTimestamp, Count)
        : throw new InvalidOperationException("The batch's records are compressed: walk Readable(...) instead.");

    /// <summary>Walks the records of a batch; a malformed record throws <see cref="LogCorruptedException"/>.</summary>
    public ref struct Enumerator
    {
        private readonly ReadOnlySpan<byte> _bytes;
        private readonly long _baseOffset;
        private readonly long _baseTimestamp;
        private readonly int _count;
        private int _position;
        private int _index;

        internal Enumerator(ReadOnlySpan<byte> bytes, long baseOffset, long baseTimestamp, int count)
        {
            _bytes = bytes;
            _baseOffset = baseOffset;
            _baseTimestamp = baseTimestamp;
            _count = count;
            _position = 0;
        }

        public LogRecord Current { get; private set; }

        public bool MoveNext()
        {
            if (_index >= _count)
            {
                return false;
            }
            int start = _position;
            if (!Varint.TryRead(_bytes, ref _position, out long bodySize) || bodySize < 0 || _position + bodySize > _bytes.Length)
            {
                throw Corrupt("record length");
            }
            int end = _position + (int)bodySize;
            ReadOnlySpan<byte> body = _bytes[..end];
            int p = _position;
            byte attributes = body[p++];
            if (!Varint.TryRead(body, ref p, out long timestampDelta)
                || !Varint.TryRead(body, ref p, out long offsetDelta))
            {
                throw Corrupt("record timestamp or offset");
            }
            var key = ReadPayload(body, ref p, out bool keyNull);
            var value = ReadPayload(body, ref p, out bool valueNull);
            if (!Varint.TryRead(body, ref p, out long headerCount) || headerCount < 0)
            {
                throw Corrupt("header count");
            }
            Current = new LogRecord(
                _baseOffset + offsetDelta,
                _baseTimestamp + timestampDelta,
                (PayloadFormat)((attributes >> BatchLayout.KeyFormatShift) & BatchLayout.FormatMask),
                keyNull,
                key,
                (PayloadFormat)((attributes >> BatchLayout.ValueFormatShift) & BatchLayout.FormatMask),
                valueNull,
                value,
                (int)headerCount,
                body[p..end],
                end - start);
            _position = end;
            _index++;
            return true;
        }

        /// <summary>Reads a length-prefixed payload (Kafka writes -1 for null).</summary>
        private static ReadOnlySpan<byte> ReadPayload(ReadOnlySpan<byte> body, scoped ref int p, out bool isNull)
        {
            if (!Varint.TryRead(body, ref p, out long length) || length < -1 || p + length > body.Length)
            {
                throw Corrupt("payload length");
            }
            isNull = length < 0;
            if (isNull)
            {
                return default;
            }
            var bytes = body.Slice(p, (int)length);
            p += (int)length;
            return bytes;
        }

        private static LogCorruptedException Corrupt(string what) => new($"Malformed {what} inside a batch whose CRC matched.");
    }
}
