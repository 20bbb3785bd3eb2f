using System.Buffers;
using System.Buffers.Binary;

namespace Gateway.Storage.Records;

/// <summary>Why a record batch sent by a Kafka producer is refused (the listener maps each to Kafka's error code).</summary>
public enum IncomingBatchError
{
    None,

    /// <summary>Not one complete v2 batch with a matching CRC, or records that do not parse (CORRUPT_MESSAGE).</summary>
    Corrupt,

    /// <summary>Offsets that are not 0, 1, 2, ... in order, or a count that disagrees with the records (INVALID_RECORD).</summary>
    InvalidRecord,

    /// <summary>A compression codec Kafka does not have (UNSUPPORTED_COMPRESSION_TYPE).</summary>
    UnsupportedCompression,

    /// <summary>A transactional or control batch: transactions are not offered (INVALID_REQUEST).</summary>
    Transactional,

    /// <summary>A record larger than the topic allows (MESSAGE_TOO_LARGE).</summary>
    RecordTooLarge,

    /// <summary>A producer id this broker never hands out (UNKNOWN_PRODUCER_ID).</summary>
    UnknownProducer,
}

/// <summary>
/// Checks a record batch as a Kafka producer sends it before it is stored as it is: one complete v2 batch whose CRC
/// matches, every record well formed inside it (a compressed batch's once decompressed: gzip, snappy, lz4, zstd),
/// offset deltas dense from 0, no transactional or control batch. What passes can be read back by every reader of
/// the log without a surprise.
/// </summary>
public static class IncomingBatch
{
    private const int CompressionMask = 0x07;
    private const int TransactionalBit = 0x10;
    private const int ControlBit = 0x20;

    public static IncomingBatchError Validate(ReadOnlyMemory<byte> batch, int maxRecordBytes, out string detail)
    {
        var bytes = batch.Span;
        if (!RecordBatch.TryValidate(bytes, out detail))
        {
            return IncomingBatchError.Corrupt;
        }
        short attributes = BinaryPrimitives.ReadInt16BigEndian(bytes[BatchLayout.Attributes..]);
        if ((attributes & (TransactionalBit | ControlBit)) != 0)
        {
            detail = "transactional and control batches are not taken: transactions are not offered";
            return IncomingBatchError.Transactional;
        }
        long producerId = BinaryPrimitives.ReadInt64BigEndian(bytes[BatchLayout.ProducerId..]);
        if (producerId >= ProducerBatch.ProducerIdLimit || producerId < -1)
        {
            // Ids at and above the limit hold HTTP's idempotency stamps: a Kafka producer may not claim them.
            detail = $"producer id {producerId} was not handed out by this broker";
            return IncomingBatchError.UnknownProducer;
        }
        if (producerId >= 0
            && (BinaryPrimitives.ReadInt16BigEndian(bytes[BatchLayout.ProducerEpoch..]) < 0 || BinaryPrimitives.ReadInt32BigEndian(bytes[BatchLayout.BaseSequence..]) < 0))
        {
            detail = $"producer {producerId}'s batch has a negative epoch or sequence";
            return IncomingBatchError.InvalidRecord;
        }
        var codec = (CompressionCodec)(attributes & CompressionMask);
        int count = BinaryPrimitives.ReadInt32BigEndian(bytes[BatchLayout.RecordsCount..]);
        if (codec == CompressionCodec.None)
        {
            return CheckRecords(bytes[BatchLayout.HeaderSize..], count, maxRecordBytes, out detail);
        }
        if (!BatchCompression.IsKnown(codec))
        {
            detail = $"compression codec {(int)codec} is not one of Kafka's (gzip 1, snappy 2, lz4 3, zstd 4)";
            return IncomingBatchError.UnsupportedCompression;
        }
        // Every record may be as large as the topic takes, plus its framing; more is a bomb, not a batch.
        long limit = Math.Min(BatchCompression.MaxDecompressedBytes, (long)count * ((long)maxRecordBytes + 64));
        IMemoryOwner<byte> decompressed;
        int length;
        try
        {
            decompressed = BatchCompression.Decompress(codec, batch[BatchLayout.HeaderSize..], (int)limit, out length);
        }
        catch (DecompressedTooLargeException ex)
        {
            detail = $"{ex.Message}: more than {count} record(s) of at most {maxRecordBytes} bytes can hold";
            return IncomingBatchError.RecordTooLarge;
        }
        catch (InvalidDataException ex)
        {
            detail = ex.Message;
            return IncomingBatchError.Corrupt;
        }
        using (decompressed)
        {
            return CheckRecords(decompressed.Memory.Span[..length], count, maxRecordBytes, out detail);
        }
    }

    /// <summary>Checks that <paramref name="records"/> holds exactly <paramref name="count"/> well-formed records with dense offset deltas.</summary>
    private static IncomingBatchError CheckRecords(ReadOnlySpan<byte> records, int count, int maxRecordBytes, out string detail)
    {
        int position = 0;
        for (int i = 0; i < count; i++)
        {
            var error = CheckRecord(records, ref position, i, maxRecordBytes, out detail);
            if (error != IncomingBatchError.None)
            {
                return error;
            }
        }
        if (position != records.Length)
        {
            detail = $"{records.Length - position} byte(s) after the batch's {count} records";
            return IncomingBatchError.InvalidRecord;
        }
        detail = "";
        return IncomingBatchError.None;
    }

    private static IncomingBatchError CheckRecord(ReadOnlySpan<byte> bytes, ref int position, int index, int maxRecordBytes, out string detail)
    {
        if (!Varint.TryRead(bytes, ref position, out long size) || size < 1 || size > bytes.Length - position)
        {
            detail = $"record {index}: its length does not fit the batch";
            return IncomingBatchError.Corrupt;
        }
        if (size > maxRecordBytes)
        {
            detail = $"record {index} is {size} bytes; the topic takes at most {maxRecordBytes}";
            return IncomingBatchError.RecordTooLarge;
        }
        var body = bytes.Slice(position, (int)size);
        position += (int)size;
        int p = 1; // the attributes byte
        if (!Varint.TryRead(body, ref p, out _) || !Varint.TryRead(body, ref p, out long offsetDelta))
        {
            detail = $"record {index}: timestamp or offset delta does not parse";
            return IncomingBatchError.Corrupt;
        }
        if (offsetDelta != index)
        {
            detail = $"record {index} has offset delta {offsetDelta}";
            return IncomingBatchError.InvalidRecord;
        }
        if (!SkipPayload(body, ref p) || !SkipPayload(body, ref p) || !Varint.TryRead(body, ref p, out long headers) || headers < 0 || headers > body.Length)
        {
            detail = $"record {index}: key, value or header count does not parse";
            return IncomingBatchError.Corrupt;
        }
        for (long h = 0; h < headers; h++)
        {
            // A header name is a string (never null); its value may be null.
            if (!Varint.TryRead(body, ref p, out long nameLength) || nameLength < 0 || nameLength > body.Length - p || !System.Text.Unicode.Utf8.IsValid(body.Slice(p, (int)nameLength)))
            {
                detail = $"record {index}: header {h} has no valid name";
                return IncomingBatchError.Corrupt;
            }
            p += (int)nameLength;
            if (!SkipPayload(body, ref p))
            {
                detail = $"record {index}: header {h}'s value does not parse";
                return IncomingBatchError.Corrupt;
            }
        }
        if (p != body.Length)
        {
            detail = $"record {index}: {body.Length - p} byte(s) after its headers";
            return IncomingBatchError.Corrupt;
        }
        detail = "";
        return IncomingBatchError.None;
    }

    private static bool SkipPayload(ReadOnlySpan<byte> body, ref int p)
    {
        if (!Varint.TryRead(body, ref p, out long length) || length < -1 || length > body.Length - p)
        {
            return false;
        }
        if (length > 0)
        {
            p += (int)length;
        }
        return true;
    }
}
