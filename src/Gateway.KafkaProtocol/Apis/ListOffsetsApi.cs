using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// ListOffsets (key 2), versions 0-5: the earliest offset (timestamp -2), the latest (-1, the high watermark), or the
/// first offset whose record's timestamp is at or after a time, with that record's timestamp (offset and timestamp
/// -1 when no record is that late). Version 0 answers in its old form, a list of at most one offset.
/// </summary>
internal static class ListOffsetsApi
{
    private const long Latest = -1;
    private const long Earliest = -2;

    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        short version = request.Version;
        var topics = Parse(request);
        var answers = new List<(string Topic, List<(int Index, short Error, long Timestamp, long Offset)> Partitions)>();
        foreach (var (name, partitions) in topics)
        {
            var list = new List<(int, short, long, long)>();
            answers.Add((name, list));
            foreach (var (index, timestamp) in partitions)
            {
                try
                {
                    broker.Demand(request, KafkaResource.Topic, name, KafkaOperation.Fetch);
                    var partition = broker.Store.GetTopic(name).GetPartition(index);
                    var (offset, found) = timestamp switch
                    {
                        Latest => (partition.EndOffset, -1L),
                        Earliest => (partition.BeginOffset, -1L),
                        < 0 => (-1L, -1L),
                        _ => await ByTimeAsync(partition, timestamp, cancel),
                    };
                    list.Add((index, timestamp < Earliest ? ErrorCode.InvalidRequest : ErrorCode.None, found, offset));
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    list.Add((index, broker.ErrorOf(ex, name, index), -1, -1));
                }
            }
        }

        if (version >= 2)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteArrayLength(answers.Count);
        foreach (var (name, partitions) in answers)
        {
            writer.WriteString(name);
            writer.WriteArrayLength(partitions.Count);
            foreach (var (index, error, timestamp, offset) in partitions)
            {
                writer.WriteInt32(index);
                writer.WriteInt16(error);
                if (version == 0)
                {
                    writer.WriteArrayLength(offset < 0 ? 0 : 1);
                    if (offset >= 0)
                    {
                        writer.WriteInt64(offset);
                    }
                    continue;
                }
                writer.WriteInt64(timestamp);
                writer.WriteInt64(offset);
                if (version >= 4)
                {
                    writer.WriteInt32(-1); // leader_epoch
                }
            }
        }
        return true;
    }

    private static async Task<(long Offset, long Timestamp)> ByTimeAsync(Gateway.Storage.IPartition partition, long timestamp, CancellationToken cancel)
    {
        long offset = await partition.OffsetForTimestampAsync(timestamp, cancel);
        if (offset >= partition.EndOffset)
        {
            return (-1, -1);
        }
        using var set = await partition.ReadAsync(offset, 1, 1, cancel);
        foreach (var record in set)
        {
            if (record.Offset == offset)
            {
                return (offset, record.Timestamp);
            }
        }
        return (offset, timestamp);
    }

    private static List<(string Name, List<(int Index, long Timestamp)> Partitions)> Parse(KafkaRequest request)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        reader.ReadInt32(); // replica_id
        if (version >= 2)
        {
            reader.ReadInt8(); // isolation_level: no transactions
        }
        int topicCount = reader.ReadArrayLength(minElementBytes: 6);
        var topics = new List<(string, List<(int, long)>)>(topicCount);
        for (int t = 0; t < topicCount; t++)
        {
            string name = reader.ReadString();
            int partitionCount = reader.ReadArrayLength(minElementBytes: 12);
            var partitions = new List<(int, long)>(partitionCount);
            for (int p = 0; p < partitionCount; p++)
            {
                int index = reader.ReadInt32();
                if (version >= 4)
                {
                    reader.ReadInt32(); // current_leader_epoch
                }
                long timestamp = reader.ReadInt64();
                if (version == 0)
                {
                    reader.ReadInt32(); // max_num_offsets
                }
                partitions.Add((index, timestamp));
            }
            topics.Add((name, partitions));
        }
        return topics;
    }
}
