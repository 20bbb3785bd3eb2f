using Gateway.KafkaProtocol.Protocol;
using Gateway.Storage;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// CreateTopics (key 19), versions 0-4. Replication factor 1 (or -1, the default) on this single node; partitions
/// from 1 to <c>Limits:MaxPartitions</c> (-1: one); configs <c>retention.ms</c>, <c>retention.bytes</c>,
/// <c>max.message.bytes</c> (Kafka's names for the topic's retention and record size) and <c>gateway.acks</c>, checked as
/// the HTTP API checks them. Manual replica assignments are refused. <c>validate_only</c> checks without creating.
/// </summary>
internal static class CreateTopicsApi
{
    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        short version = request.Version;
        var (topics, validateOnly) = Parse(request);
        var results = new List<(string Name, short Error, string? Message)>();
        foreach (var topic in topics)
        {
            var (error, message) = broker.Allows(request, KafkaResource.Topic, topic.Name, KafkaOperation.Admin)
                ? await CreateAsync(broker, topic, validateOnly, cancel)
                : (ErrorCode.TopicAuthorizationFailed, $"'{broker.PrincipalOf(request)}' may not create topic '{topic.Name}'.");
            results.Add((topic.Name, error, message));
        }
        if (version >= 2)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteArrayLength(results.Count);
        foreach (var (name, error, message) in results)
        {
            writer.WriteString(name);
            writer.WriteInt16(error);
            if (version >= 1)
            {
                writer.WriteNullableString(message);
            }
        }
        return true;
    }

    private static async Task<(short, string?)> CreateAsync(KafkaBroker broker, TopicRequest topic, bool validateOnly, CancellationToken cancel)
    {
        if (!TopicName.IsValid(topic.Name))
        {
            return (ErrorCode.InvalidTopic, "A topic name is 1-249 characters of [a-zA-Z0-9._-], and not '.' or '..'.");
        }
        int partitions = topic.Partitions == -1 ? 1 : topic.Partitions;
        if (partitions < 1 || partitions > broker.Options.MaxPartitions)
        {
            return (ErrorCode.InvalidPartitions, $"A topic has 1 to {broker.Options.MaxPartitions} partitions.");
        }
        if (topic.ReplicationFactor is not (1 or -1))
        {
            return (ErrorCode.InvalidReplicationFactor, "This is a single broker: the replication factor is 1.");
        }
        if (topic.HasAssignments)
        {
            return (ErrorCode.InvalidReplicaAssignment, "Replicas are not assigned by hand on a single broker.");
        }
        var (config, problem) = TopicConfigs.Apply(broker.Store.Limits.TopicDefaults, topic.Configs, broker.Store.Limits);
        if (config is null)
        {
            return (ErrorCode.InvalidConfig, problem);
        }
        if (broker.Store.TopicExists(topic.Name))
        {
            return (ErrorCode.TopicAlreadyExists, $"Topic '{topic.Name}' already exists.");
        }
        if (validateOnly)
        {
            return (ErrorCode.None, null);
        }
        try
        {
            await broker.Store.CreateTopicAsync(topic.Name, partitions, config, cancel);
            return (ErrorCode.None, null);
        }
        catch (TopicExistsException ex)
        {
            return (ErrorCode.TopicAlreadyExists, ex.Message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return (broker.ErrorOf(ex, topic.Name, -1), ex.Message);
        }
    }

    private static (List<TopicRequest>, bool ValidateOnly) Parse(KafkaRequest request)
    {
        var reader = new KafkaReader(request.Body.Span);
        int count = reader.ReadArrayLength(minElementBytes: 16);
        var topics = new List<TopicRequest>(count);
        for (int t = 0; t < count; t++)
        {
            string name = reader.ReadString();
            int partitions = reader.ReadInt32();
            short replication = reader.ReadInt16();
            int assignments = reader.ReadArrayLength(minElementBytes: 8);
            for (int a = 0; a < assignments; a++)
            {
                reader.ReadInt32();
                int brokers = reader.ReadArrayLength(minElementBytes: 4);
                for (int b = 0; b < brokers; b++)
                {
                    reader.ReadInt32();
                }
            }
            int configCount = reader.ReadArrayLength(minElementBytes: 4);
            var configs = new List<(string, string?)>(Math.Max(0, configCount));
            for (int c = 0; c < configCount; c++)
            {
                configs.Add((reader.ReadString(), reader.ReadNullableString()));
            }
            topics.Add(new TopicRequest(name, partitions, replication, assignments > 0, configs));
        }
        reader.ReadInt32(); // timeout_ms: creation here does not wait on other brokers
        bool validateOnly = request.Version >= 1 && reader.ReadBool();
        return (topics, validateOnly);
    }

    private sealed record TopicRequest(string Name, int Partitions, short ReplicationFactor, bool HasAssignments, List<(string Name, string? Value)> Configs);
}
