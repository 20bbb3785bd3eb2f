using Gateway.KafkaProtocol.Protocol;
using Gateway.Storage;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// AlterConfigs (key 33, versions 0-1) and IncrementalAlterConfigs (key 44, version 0): a topic's config under Kafka's
/// names (<see cref="TopicConfigs"/>), as HTTP's <c>PATCH /v1/topics/{topic}</c> changes it. AlterConfigs replaces the
/// whole config (what it does not name goes back to its default), as Kafka's does; IncrementalAlterConfigs sets or
/// deletes (back to the default) the settings it names. APPEND and SUBTRACT (list settings) are refused; so is a broker
/// resource: this broker's settings are the server's configuration, not changed over the wire.
/// </summary>
internal static class AlterConfigsApi
{
    private const sbyte TopicResource = 2;
    private const sbyte SetOperation = 0;
    private const sbyte DeleteOperation = 1;

    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        bool incremental = request.Key == (short)ApiKey.IncrementalAlterConfigs;
        var resources = Read(request, incremental, out bool validateOnly);

        var results = new List<(sbyte Type, string Name, short Error, string? Message)>(resources.Count);
        foreach (var (type, name, settings) in resources)
        {
            try
            {
                if (type != TopicResource)
                {
                    results.Add((type, name, ErrorCode.InvalidRequest, $"Resource type {type} is not altered here: only topics' configs are."));
                    continue;
                }
                broker.Demand(request, KafkaResource.Topic, name, KafkaOperation.Admin);
                var topic = broker.Store.GetTopic(name);
                var defaults = broker.Store.Limits.TopicDefaults;
                var (config, problem) = Alter(incremental ? topic.Config : defaults, settings, incremental, broker.Store.Limits);
                if (config is null)
                {
                    results.Add((type, name, ErrorCode.InvalidConfig, problem));
                    continue;
                }
                if (!validateOnly && config != topic.Config)
                {
                    await broker.Store.UpdateTopicAsync(name, config, null, cancel);
                }
                results.Add((type, name, ErrorCode.None, null));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                results.Add((type, name, broker.ErrorOf(ex, name, -1), ex.Message));
            }
        }
        writer.WriteInt32(0); // throttle_time_ms
        writer.WriteArrayLength(results.Count);
        foreach (var (type, name, error, message) in results)
        {
            writer.WriteInt16(error);
            writer.WriteNullableString(message);
            writer.WriteInt8(type);
            writer.WriteString(name);
        }
        return true;
    }

    private static List<(sbyte Type, string Name, List<(string Name, sbyte Operation, string? Value)> Settings)> Read(KafkaRequest request, bool incremental, out bool validateOnly)
    {
        var reader = new KafkaReader(request.Body.Span);
        int count = reader.ReadArrayLength(minElementBytes: 7);
        var resources = new List<(sbyte, string, List<(string, sbyte, string?)>)>(count);
        for (int r = 0; r < count; r++)
        {
            sbyte type = reader.ReadInt8();
            string name = reader.ReadString();
            int settingCount = reader.ReadArrayLength(minElementBytes: incremental ? 5 : 4);
            var settings = new List<(string, sbyte, string?)>(settingCount);
            for (int s = 0; s < settingCount; s++)
            {
                string key = reader.ReadString();
                sbyte operation = incremental ? reader.ReadInt8() : SetOperation;
                settings.Add((key, operation, reader.ReadNullableString()));
            }
            resources.Add((type, name, settings));
        }
        validateOnly = reader.ReadBool();
        return resources;
    }

    /// <summary>The config with the settings applied to <paramref name="start"/>, or null and why not (INVALID_CONFIG).</summary>
    private static (TopicConfig? Config, string? Problem) Alter(TopicConfig start, List<(string Name, sbyte Operation, string? Value)> settings, bool incremental, StorageLimits limits)
    {
        var defaults = limits.TopicDefaults;
        var config = start;
        var toSet = new List<(string, string?)>();
        foreach (var (name, operation, value) in settings)
        {
            switch (operation)
            {
                case SetOperation when value is not null:
                    toSet.Add((name, value));
                    break;
                case SetOperation:
                case DeleteOperation:
                    // Back to the default (AlterConfigs' null value means the same).
                    config = name switch
                    {
                        TopicConfigs.RetentionMs => config with { RetentionMs = defaults.RetentionMs },
                        TopicConfigs.RetentionBytes => config with { RetentionBytes = defaults.RetentionBytes },
                        TopicConfigs.MaxMessageBytes => config with { MaxRecordBytes = defaults.MaxRecordBytes },
                        TopicConfigs.Acks => config with { Acks = defaults.Acks },
                        _ => config,
                    };
                    break;
                default:
                    return (null, incremental
                        ? $"Operation {operation} on '{name}' is not offered: settings are set (0) or deleted (1); none here is a list to append to."
                        : $"'{name}' has no value.");
            }
        }
        return TopicConfigs.Apply(config, toSet, limits);
    }
}
