using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>DeleteTopics (key 20), versions 0-3: deletes each topic as <c>DELETE /v1/topics/{topic}</c> does (its groups' offsets go too).</summary>
internal static class DeleteTopicsApi
{
    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        var reader = new KafkaReader(request.Body.Span);
        int count = reader.ReadArrayLength(minElementBytes: 2);
        var names = new List<string>(count);
        for (int i = 0; i < count; i++)
        {
            names.Add(reader.ReadString());
        }
        var results = new List<(string, short)>();
        foreach (string name in names)
        {
            try
            {
                broker.Demand(request, KafkaResource.Topic, name, KafkaOperation.Admin);
                await broker.Store.DeleteTopicAsync(name, cancel);
                await broker.TopicEvents.DeletedAsync(name);
                results.Add((name, ErrorCode.None));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                results.Add((name, broker.ErrorOf(ex, name, -1)));
            }
        }
        if (request.Version >= 1)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteArrayLength(results.Count);
        foreach (var (name, error) in results)
        {
            writer.WriteString(name);
            writer.WriteInt16(error);
        }
        return true;
    }
}
