using Gateway.KafkaProtocol.Protocol;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// Produce (key 0), versions 0-8. Each partition's record set must be one v2 batch (<see cref="IncomingBatch"/>: CRC,
/// framing, dense offset deltas, sizes); it is stored as it is, its base offset set by the log. <c>acks=-1</c> (all)
/// answers once the batch is durable, as HTTP's <c>acks=disk</c>; <c>acks=1</c> once it is in the log, as
/// <c>acks=memory</c>; <c>acks=0</c> gets no answer. A batch of an idempotent producer is checked against the
/// producer's last batches on the partition: a retry is answered with its original base offset, a gap is
/// OUT_OF_ORDER_SEQUENCE_NUMBER and a fenced epoch INVALID_PRODUCER_EPOCH. The partitions of one request are appended
/// concurrently, so durable ones share a commit.
/// </summary>
internal static class ProduceApi
{
    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        var produce = Parse(request);
        var acks = produce.Acks switch
        {
            -1 => Acks.Disk,
            1 or 0 => Acks.Memory,
            _ => (Acks?)null,
        };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(TimeSpan.FromMilliseconds(Math.Clamp(produce.TimeoutMs, 1, 300_000)));
        var results = new List<(string Topic, List<PartitionResult> Partitions)>();
        var appends = new List<Task>();
        foreach (var (name, partitions) in produce.Topics)
        {
            var answers = new List<PartitionResult>();
            results.Add((name, answers));
            foreach (var (index, records) in partitions)
            {
                var result = new PartitionResult(index);
                answers.Add(result);
                if (acks is not { } level)
                {
                    result.Error = ErrorCode.InvalidRequiredAcks;
                    continue;
                }
                if (!broker.Allows(request, KafkaResource.Topic, name, KafkaOperation.Produce))
                {
                    result.Error = ErrorCode.TopicAuthorizationFailed;
                    continue;
                }
                if (produce.TransactionalId is not null)
                {
                    result.Error = ErrorCode.InvalidRequest;
                    result.Message = "Transactions are not offered.";
                    continue;
                }
                appends.Add(AppendAsync(broker, name, records, level, result, timeout.Token));
            }
        }
        await Task.WhenAll(appends);
        // The principal's produce quota, shared with HTTP: over it, the answer says how long to wait (throttle_time_ms)
        // and the connection reads nothing more until then (Kafka's KIP-219), slowing down a client that does not
        // listen too, without refusing what was sent.
        var throttle = broker.Security.ChargeProduce(broker.PrincipalOf(request), request.Body.Length);
        request.Client?.MuteFor(throttle, broker.Time);
        if (produce.Acks == 0)
        {
            return false;
        }

        short version = request.Version;
        writer.WriteArrayLength(results.Count);
        foreach (var (topic, partitions) in results)
        {
            writer.WriteString(topic);
            writer.WriteArrayLength(partitions.Count);
            foreach (var result in partitions)
            {
                writer.WriteInt32(result.Partition);
                writer.WriteInt16(result.Error);
                writer.WriteInt64(result.BaseOffset);
                if (version >= 2)
                {
                    writer.WriteInt64(-1); // log_append_time_ms: records keep the producer's time (CreateTime)
                }
                if (version >= 5)
                {
                    writer.WriteInt64(result.LogStartOffset);
                }
                if (version >= 8)
                {
                    writer.WriteArrayLength(0); // record_errors
                    writer.WriteNullableString(result.Message);
                }
            }
        }
        if (version >= 1)
        {
            writer.WriteInt32((int)Math.Min(int.MaxValue, Math.Ceiling(throttle.TotalMilliseconds)));
        }
        return true;
    }

    private static async Task AppendAsync(KafkaBroker broker, string topic, ReadOnlyMemory<byte>? records, Acks acks, PartitionResult result, CancellationToken cancel)
    {
        try
        {
            var log = broker.Store.GetTopic(topic);
            var partition = log.GetPartition(result.Partition);
            result.LogStartOffset = partition.BeginOffset;
            if (records is not { } bytes)
            {
                result.Error = ErrorCode.CorruptMessage;
                result.Message = "The record set is null.";
                return;
            }
            var error = IncomingBatch.Validate(bytes, log.Config.MaxRecordBytes, out string detail);
            if (error != IncomingBatchError.None)
            {
                result.Error = error switch
                {
                    IncomingBatchError.InvalidRecord => ErrorCode.InvalidRecord,
                    IncomingBatchError.UnsupportedCompression => ErrorCode.UnsupportedCompressionType,
                    IncomingBatchError.Transactional => ErrorCode.InvalidRequest,
                    IncomingBatchError.UnknownProducer => ErrorCode.UnknownProducerId,
                    IncomingBatchError.RecordTooLarge => ErrorCode.MessageTooLarge,
                    _ => ErrorCode.CorruptMessage,
                };
                result.Message = detail;
                return;
            }
            using var batch = RecordBatchBuilder.FromValidatedBatch(bytes.Span);
            result.BaseOffset = await partition.AppendAsync(batch, acks, cancellationToken: cancel);
            result.Error = ErrorCode.None;
        }
        catch (OperationCanceledException)
        {
            // The request's timeout passed first (or the client left): the batch may still become durable, as in Kafka.
            result.Error = ErrorCode.RequestTimedOut;
        }
        catch (Exception ex)
        {
            result.Error = broker.ErrorOf(ex, topic, result.Partition);
            result.Message = ex.Message;
        }
    }

    private static ProduceRequest Parse(KafkaRequest request)
    {
        var reader = new KafkaReader(request.Body.Span);
        string? transactionalId = request.Version >= 3 ? reader.ReadNullableString() : null;
        short acks = reader.ReadInt16();
        int timeoutMs = reader.ReadInt32();
        int topicCount = reader.ReadArrayLength(minElementBytes: 6);
        var topics = new List<(string, List<(int, ReadOnlyMemory<byte>?)>)>(topicCount);
        for (int t = 0; t < topicCount; t++)
        {
            string name = reader.ReadString();
            int partitionCount = reader.ReadArrayLength(minElementBytes: 8);
            var partitions = new List<(int, ReadOnlyMemory<byte>?)>(partitionCount);
            for (int p = 0; p < partitionCount; p++)
            {
                int index = reader.ReadInt32();
                int start = reader.Position + 4;
                var bytes = reader.ReadNullableBytes(out bool isNull);
                partitions.Add((index, isNull ? null : request.Body.Slice(start, bytes.Length)));
            }
            topics.Add((name, partitions));
        }
        return new ProduceRequest(transactionalId, acks, timeoutMs, topics);
    }

    private sealed record ProduceRequest(string? TransactionalId, short Acks, int TimeoutMs, List<(string Name, List<(int Index, ReadOnlyMemory<byte>? Records)> Partitions)> Topics);

    private sealed class PartitionResult(int partition)
    {
        public int Partition { get; } = partition;

        public short Error { get; set; } = ErrorCode.UnknownServerError;

        public string? Message { get; set; }

        public long BaseOffset { get; set; } = -1;

        public long LogStartOffset { get; set; } = -1;
    }
}
