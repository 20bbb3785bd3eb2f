using Gateway.KafkaProtocol.Protocol;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// Fetch (key 1), versions 0-11: the stored batches from each partition's fetch offset, sent as they are stored (a
/// batch may start before the offset; clients skip what they did not ask for). Only committed records are read
/// (the high watermark is the end offset). With nothing to send, it waits up to <c>max_wait_ms</c> for the commit
/// that brings <c>min_bytes</c>, woken by the partitions' commit signals, not by polling; a fetch that waits holds one
/// of its principal's long-poll slots (without one free it answers at once, throttled). No fetch sessions: the
/// answer's session id 0 tells the client to send full requests.
/// </summary>
internal static class FetchApi
{
    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        var fetch = Parse(request);
        var denied = fetch.Topics.Select(t => t.Item1).Where(t => !broker.Allows(request, KafkaResource.Topic, t, KafkaOperation.Fetch)).ToHashSet(StringComparer.Ordinal);
        var deadline = broker.Time.GetUtcNow().AddMilliseconds(Math.Clamp(fetch.MaxWaitMs, 0, 300_000));
        var results = new List<PartitionResult>();
        IDisposable? slot = null;
        var throttle = TimeSpan.Zero;
        try
        {
            while (true)
            {
                long bytes = await ReadAllAsync(broker, fetch, denied, results, cancel);
                var remaining = deadline - broker.Time.GetUtcNow();
                if (bytes >= Math.Max(1, fetch.MinBytes) || remaining <= TimeSpan.Zero)
                {
                    break;
                }
                // Only a fetch that really waits takes one of its principal's long-poll slots (shared with HTTP's
                // long-polls and streams); with none free it answers now and asks the client to hold off a second.
                slot ??= broker.Security.EnterWait(broker.PrincipalOf(request));
                if (slot is null)
                {
                    throttle = TimeSpan.FromSeconds(1);
                    request.Client?.MuteFor(throttle, broker.Time);
                    break;
                }
                var waits = new List<Task>();
                foreach (var result in results)
                {
                    if (result.Partition is { Failure: null } partition && result.Error == ErrorCode.None)
                    {
                        waits.Add(partition.NextCommit(result.FetchOffset));
                    }
                }
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                waits.Add(Task.Delay(remaining, broker.Time, wake.Token));
                await Task.WhenAny(waits);
                await wake.CancelAsync();
                cancel.ThrowIfCancellationRequested();
                Release(results);
            }
            Write(writer, request.Version, results, throttle);
            return true;
        }
        finally
        {
            slot?.Dispose();
            Release(results);
        }
    }

    /// <summary>Reads every partition asked for, within the request's limits; returns the bytes of records found.</summary>
    private static async Task<long> ReadAllAsync(KafkaBroker broker, FetchRequest fetch, HashSet<string> denied, List<PartitionResult> results, CancellationToken cancel)
    {
        results.Clear();
        long total = 0;
        long budget = fetch.MaxBytes <= 0 ? int.MaxValue : fetch.MaxBytes;
        foreach (var (topic, partitions) in fetch.Topics)
        {
            foreach (var (index, offset, maxBytes) in partitions)
            {
                var result = new PartitionResult(topic, index, offset);
                results.Add(result);
                if (denied.Contains(topic))
                {
                    result.Error = ErrorCode.TopicAuthorizationFailed;
                    continue;
                }
                try
                {
                    var partition = broker.Store.GetTopic(topic).GetPartition(index);
                    result.Partition = partition;
                    result.HighWatermark = partition.EndOffset;
                    result.LogStartOffset = partition.BeginOffset;
                    if (offset < partition.BeginOffset || offset > partition.EndOffset)
                    {
                        result.Error = ErrorCode.OffsetOutOfRange;
                        continue;
                    }
                    result.Error = ErrorCode.None;
                    if (offset == partition.EndOffset || (budget <= 0 && total > 0))
                    {
                        continue;
                    }
                    // The first partition with records sends at least one whole batch, whatever the limits (as Kafka does).
                    int limit = (int)Math.Clamp(Math.Min(maxBytes, budget), 1, int.MaxValue);
                    var set = await partition.ReadAsync(offset, int.MaxValue, limit, cancel);
                    result.Records = set;
                    for (int b = 0; b < set.BatchCount; b++)
                    {
                        result.RecordBytes += set.BatchAt(b).Bytes.Length;
                    }
                    result.HighWatermark = Math.Max(result.HighWatermark, set.EndOffset);
                    total += result.RecordBytes;
                    budget -= result.RecordBytes;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    result.Error = broker.ErrorOf(ex, topic, index);
                }
            }
        }
        return total;
    }

    private static void Write(KafkaWriter writer, short version, List<PartitionResult> results, TimeSpan throttle)
    {
        writer.Reserve(64 + (results.Count * 64));
        if (version >= 1)
        {
            writer.WriteInt32((int)throttle.TotalMilliseconds);
        }
        if (version >= 7)
        {
            writer.WriteInt16(ErrorCode.None);
            writer.WriteInt32(0); // session_id: no fetch sessions
        }
        var byTopic = results.GroupBy(r => r.Topic).ToList();
        writer.WriteArrayLength(byTopic.Count);
        foreach (var topic in byTopic)
        {
            writer.WriteString(topic.Key);
            writer.WriteArrayLength(topic.Count());
            foreach (var result in topic)
            {
                writer.WriteInt32(result.Index);
                writer.WriteInt16(result.Error);
                writer.WriteInt64(result.HighWatermark);
                if (version >= 4)
                {
                    writer.WriteInt64(result.HighWatermark); // last_stable_offset: no transactions
                }
                if (version >= 5)
                {
                    writer.WriteInt64(result.LogStartOffset);
                }
                if (version >= 4)
                {
                    writer.WriteArrayLength(-1); // aborted_transactions: none
                }
                if (version >= 11)
                {
                    writer.WriteInt32(-1); // preferred_read_replica
                }
                // An empty partition gets a zero-length record set, not null: librdkafka complains at a null one.
                writer.WriteInt32(result.RecordBytes);
                if (result.Records is { } set)
                {
                    // The stored batches go out from where they were read, not copied into the answer first: the
                    // answer holds them until it is written.
                    var batches = new ReadOnlyMemory<byte>[set.BatchCount];
                    for (int b = 0; b < batches.Length; b++)
                    {
                        batches[b] = set.BatchAt(b).Bytes;
                    }
                    result.Records = null;
                    writer.WriteOwned(batches, set);
                }
            }
        }
    }

    private static void Release(List<PartitionResult> results)
    {
        foreach (var result in results)
        {
            result.Records?.Dispose();
            result.Records = null;
        }
    }

    private static FetchRequest Parse(KafkaRequest request)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        reader.ReadInt32(); // replica_id
        int maxWaitMs = reader.ReadInt32();
        int minBytes = reader.ReadInt32();
        int maxBytes = version >= 3 ? reader.ReadInt32() : int.MaxValue;
        if (version >= 4)
        {
            reader.ReadInt8(); // isolation_level: no transactions, both levels read the same
        }
        if (version >= 7)
        {
            reader.ReadInt32(); // session_id
            reader.ReadInt32(); // session_epoch
        }
        int topicCount = reader.ReadArrayLength(minElementBytes: 6);
        var topics = new List<(string, List<(int, long, int)>)>(topicCount);
        for (int t = 0; t < topicCount; t++)
        {
            string name = reader.ReadString();
            int partitionCount = reader.ReadArrayLength(minElementBytes: 16);
            var partitions = new List<(int, long, int)>(partitionCount);
            for (int p = 0; p < partitionCount; p++)
            {
                int index = reader.ReadInt32();
                if (version >= 9)
                {
                    reader.ReadInt32(); // current_leader_epoch
                }
                long offset = reader.ReadInt64();
                if (version >= 5)
                {
                    reader.ReadInt64(); // log_start_offset (a follower's)
                }
                int partitionMaxBytes = reader.ReadInt32();
                partitions.Add((index, offset, partitionMaxBytes));
            }
            topics.Add((name, partitions));
        }
        // forgotten_topics_data (v7+) and rack_id (v11+) follow; without sessions there is nothing to forget.
        return new FetchRequest(maxWaitMs, minBytes, maxBytes, topics);
    }

    private sealed record FetchRequest(int MaxWaitMs, int MinBytes, int MaxBytes, List<(string Topic, List<(int Index, long Offset, int MaxBytes)> Partitions)> Topics);

    private sealed class PartitionResult(string topic, int index, long fetchOffset)
    {
        public string Topic { get; } = topic;

        public int Index { get; } = index;

        public long FetchOffset { get; } = fetchOffset;

        public IPartition? Partition { get; set; }

        public short Error { get; set; } = ErrorCode.UnknownTopicOrPartition;

        public long HighWatermark { get; set; } = -1;

        public long LogStartOffset { get; set; } = -1;

        public RecordSet? Records { get; set; }

        public int RecordBytes { get; set; }
    }
}
