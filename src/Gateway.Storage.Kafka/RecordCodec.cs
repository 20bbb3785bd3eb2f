using System.Buffers;
using Confluent.Kafka;
using Gateway.Storage.Records;

namespace Gateway.Storage.Kafka;

/// <summary>
/// Records between the port's batches and Kafka messages. The key's and value's formats (text, JSON, binary: what HTTP
/// produce was given) travel in a record header, <c>gateway-format</c>, of two bytes (key, value); a record without it
/// (another Kafka client's) is binary, as on the embedded backend's Kafka listener. The header is not shown to readers.
/// </summary>
internal static class RecordCodec
{
    public const string FormatHeader = "gateway-format";

    /// <summary>The messages of a sealed batch, in order.</summary>
    public static List<Message<byte[]?, byte[]?>> ToMessages(RecordBatchBuilder batch)
    {
        batch.Seal();
        var sealedBatch = new RecordBatch(batch.SealedMemory(0));
        var messages = new List<Message<byte[]?, byte[]?>>(batch.Count);
        foreach (var record in sealedBatch)
        {
            var headers = new Headers();
            foreach (var header in record.Headers)
            {
                headers.Add(header.Name, header.ValueIsNull ? null : header.Value.ToArray());
            }
            if (record.KeyFormat != PayloadFormat.Binary || record.ValueFormat != PayloadFormat.Binary)
            {
                headers.Add(FormatHeader, [(byte)record.KeyFormat, (byte)record.ValueFormat]);
            }
            messages.Add(new Message<byte[]?, byte[]?>
            {
                Key = record.KeyIsNull ? null : record.Key.ToArray(),
                Value = record.ValueIsNull ? null : record.Value.ToArray(),
                Headers = headers,
                Timestamp = new Timestamp(record.Timestamp, TimestampType.CreateTime),
            });
        }
        return messages;
    }

    /// <summary>
    /// Consumed messages as the port's record set: one batch per run of consecutive offsets (a compacted topic or a
    /// transaction's markers leave gaps), sealed with its base offset, in pooled memory the set owns.
    /// </summary>
    public static RecordSet ToRecordSet(List<ConsumeResult<byte[]?, byte[]?>> results, long startOffset, long beginOffset, long endOffset)
    {
        var batches = new List<(IMemoryOwner<byte>, RecordBatch)>();
        long bytes = 0;
        try
        {
            int i = 0;
            while (i < results.Count)
            {
                using var builder = new RecordBatchBuilder();
                long baseOffset = results[i].Offset.Value;
                long next = baseOffset;
                while (i < results.Count && results[i].Offset.Value == next)
                {
                    Add(builder, results[i].Message);
                    next++;
                    i++;
                }
                builder.Seal();
                var sealedBytes = builder.SealedBatch(baseOffset);
                var owner = MemoryPool<byte>.Shared.Rent(sealedBytes.Length);
                sealedBytes.CopyTo(owner.Memory.Span);
                var batch = new RecordBatch(owner.Memory[..sealedBytes.Length]);
                batches.Add((owner, batch));
                bytes += batch.RecordBytes;
            }
            long nextOffset = results.Count == 0 ? startOffset : results[^1].Offset.Value + 1;
            return new RecordSet(batches, startOffset, nextOffset, results.Count, bytes, beginOffset, endOffset);
        }
        catch
        {
            foreach (var (owner, _) in batches)
            {
                owner.Dispose();
            }
            throw;
        }
    }

    private static void Add(RecordBatchBuilder builder, Message<byte[]?, byte[]?> message)
    {
        var keyFormat = PayloadFormat.Binary;
        var valueFormat = PayloadFormat.Binary;
        List<RecordHeader>? headers = null;
        foreach (var header in message.Headers ?? [])
        {
            byte[]? value = header.GetValueBytes();
            if (header.Key == FormatHeader && value is { Length: 2 } && value[0] <= (byte)PayloadFormat.Json && value[1] <= (byte)PayloadFormat.Json)
            {
                keyFormat = (PayloadFormat)value[0];
                valueFormat = (PayloadFormat)value[1];
                continue;
            }
            (headers ??= []).Add(new RecordHeader(header.Key, value));
        }
        builder.Add(
            message.Timestamp.UnixTimestampMs,
            message.Key is null ? Payload.Null : new Payload(message.Key, keyFormat),
            message.Value is null ? Payload.Null : new Payload(message.Value, valueFormat),
            headers);
    }
}
