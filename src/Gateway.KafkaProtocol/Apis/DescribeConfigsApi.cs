using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// DescribeConfigs (key 32), versions 0-3: a topic's config under Kafka's names (<see cref="TopicConfigs"/>); a broker
/// resource answers with no configs. Nothing is sensitive, nothing read-only.
/// </summary>
internal static class DescribeConfigsApi
{
    private const sbyte TopicResource = 2;
    private const sbyte BrokerResource = 4;
    private const sbyte DynamicTopicConfig = 1;
    private const sbyte DefaultConfig = 5;

    public static bool Handle(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        int count = reader.ReadArrayLength(minElementBytes: 7);
        var resources = new List<(sbyte Type, string Name, HashSet<string>? Keys)>(count);
        for (int r = 0; r < count; r++)
        {
            sbyte type = reader.ReadInt8();
            string name = reader.ReadString();
            int keyCount = reader.ReadArrayLength(minElementBytes: 2, nullable: true);
            HashSet<string>? keys = keyCount < 0 ? null : new HashSet<string>(StringComparer.Ordinal);
            for (int k = 0; k < keyCount; k++)
            {
                keys!.Add(reader.ReadString());
            }
            resources.Add((type, name, keys));
        }
        // include_synonyms (v1+) and include_documentation (v3) ask for what there is not: answered empty.

        writer.WriteInt32(0); // throttle_time_ms
        writer.WriteArrayLength(resources.Count);
        foreach (var (type, name, keys) in resources)
        {
            List<(string Name, string Value, bool IsDefault)> configs = [];
            short error = ErrorCode.None;
            string? message = null;
            if (type == TopicResource)
            {
                if (!broker.Allows(request, KafkaResource.Topic, name, KafkaOperation.Describe))
                {
                    error = ErrorCode.TopicAuthorizationFailed;
                    message = $"'{broker.PrincipalOf(request)}' may not see topic '{name}'.";
                }
                else if (broker.Store.TryGetTopic(name, out var topic))
                {
                    configs = [.. TopicConfigs.Describe(topic.Config, broker.Store.Limits.TopicDefaults).Where(c => keys is null || keys.Contains(c.Name))];
                }
                else
                {
                    error = ErrorCode.UnknownTopicOrPartition;
                    message = $"Topic '{name}' does not exist.";
                }
            }
            else if (type != BrokerResource)
            {
                error = ErrorCode.InvalidRequest;
                message = $"Resource type {type} is not described here.";
            }
            writer.WriteInt16(error);
            writer.WriteNullableString(message);
            writer.WriteInt8(type);
            writer.WriteString(name);
            writer.WriteArrayLength(configs.Count);
            foreach (var (key, value, isDefault) in configs)
            {
                writer.WriteString(key);
                writer.WriteNullableString(value);
                writer.WriteBool(false); // read_only
                if (version == 0)
                {
                    writer.WriteBool(isDefault);
                }
                else
                {
                    writer.WriteInt8(isDefault ? DefaultConfig : DynamicTopicConfig);
                }
                writer.WriteBool(false); // is_sensitive
                if (version >= 1)
                {
                    writer.WriteArrayLength(0); // synonyms
                }
                if (version >= 3)
                {
                    writer.WriteInt8(key == TopicConfigs.Acks ? (sbyte)2 : (sbyte)5); // STRING or LONG
                    writer.WriteNullableString(null);
                }
            }
        }
        return true;
    }
}
