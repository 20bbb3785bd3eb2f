using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>DeleteRecords (key 21), versions 0-1: moves each partition's begin offset up to <c>offset</c> (-1: the high watermark); answers the new low watermark.</summary>
internal static class DeleteRecordsApi
{
    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        var reader = new KafkaReader(request.Body.Span);
        int count = reader.ReadArrayLength(minElementBytes: 6);
        var topics = new List<(string, List<(int, long)>)>(count);
        for (int t = 0; t < count; t++)
        {
            string name = reader.ReadString();
            int partitionCount = reader.ReadArrayLength(minElementBytes: 12);
            var partitions = new List<(int, long)>(partitionCount);
            for (int p = 0; p < partitionCount; p++)
            {
                partitions.Add((reader.ReadInt32(), reader.ReadInt64()));
            }
            topics.Add((name, partitions));
        }

        var results = new List<(string Name, List<(int Index, long Low, short Error)> Partitions)>();
        foreach (var (name, partitions) in topics)
        {
            var list = new List<(int, long, short)>();
            results.Add((name, list));
            foreach (var (index, offset) in partitions)
            {
                try
                {
                    broker.Demand(request, KafkaResource.Topic, name, KafkaOperation.Admin);
                    var partition = broker.Store.GetTopic(name).GetPartition(index);
                    long before = offset == -1 ? partition.EndOffset : offset;
                    if (before < 0 || before > partition.EndOffset)
                    {
                        list.Add((index, partition.BeginOffset, ErrorCode.OffsetOutOfRange));
                        continue;
                    }
                    long low = await partition.DeleteRecordsBeforeAsync(before, cancel);
                    list.Add((index, low, ErrorCode.None));
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    list.Add((index, -1, broker.ErrorOf(ex, name, index)));
                }
            }
        }
        writer.WriteInt32(0); // throttle_time_ms
        writer.WriteArrayLength(results.Count);
        foreach (var (name, partitions) in results)
        {
            writer.WriteString(name);
            writer.WriteArrayLength(partitions.Count);
            foreach (var (index, low, error) in partitions)
            {
                writer.WriteInt32(index);
                writer.WriteInt64(low);
                writer.WriteInt16(error);
            }
        }
        return true;
    }
}
