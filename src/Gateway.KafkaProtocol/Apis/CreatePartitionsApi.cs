using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>CreatePartitions (key 37), versions 0-1: grows a topic to <c>count</c> partitions (never fewer; assignments refused).</summary>
internal static class CreatePartitionsApi
{
    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        var reader = new KafkaReader(request.Body.Span);
        int count = reader.ReadArrayLength(minElementBytes: 10);
        var topics = new List<(string Name, int Count, bool Assigned)>(count);
        for (int t = 0; t < count; t++)
        {
            string name = reader.ReadString();
            int partitions = reader.ReadInt32();
            int assignments = reader.ReadArrayLength(minElementBytes: 4, nullable: true);
            for (int a = 0; a < assignments; a++)
            {
                int brokers = reader.ReadArrayLength(minElementBytes: 4);
                for (int b = 0; b < brokers; b++)
                {
                    reader.ReadInt32();
                }
            }
            topics.Add((name, partitions, assignments > 0));
        }
        reader.ReadInt32(); // timeout_ms
        bool validateOnly = reader.ReadBool();

        var results = new List<(string, short, string?)>();
        foreach (var (name, partitions, assigned) in topics)
        {
            try
            {
                broker.Demand(request, KafkaResource.Topic, name, KafkaOperation.Admin);
                var topic = broker.Store.GetTopic(name);
                if (assigned)
                {
                    results.Add((name, ErrorCode.InvalidReplicaAssignment, "Replicas are not assigned by hand on a single broker."));
                }
                else if (partitions <= topic.PartitionCount || partitions > broker.Options.MaxPartitions)
                {
                    results.Add((name, ErrorCode.InvalidPartitions, $"Topic '{name}' has {topic.PartitionCount} partitions; it can grow to at most {broker.Options.MaxPartitions}, never shrink."));
                }
                else
                {
                    if (!validateOnly)
                    {
                        await broker.Store.UpdateTopicAsync(name, null, partitions, cancel);
                        broker.TopicEvents.PartitionsAdded(name);
                    }
                    results.Add((name, ErrorCode.None, null));
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                results.Add((name, broker.ErrorOf(ex, name, -1), ex.Message));
            }
        }
        writer.WriteInt32(0); // throttle_time_ms
        writer.WriteArrayLength(results.Count);
        foreach (var (name, error, message) in results)
        {
            writer.WriteString(name);
            writer.WriteInt16(error);
            writer.WriteNullableString(message);
        }
        return true;
    }
}
