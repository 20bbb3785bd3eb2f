using System.Globalization;
using Gateway.Storage;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>A topic's config under Kafka's names: <c>retention.ms</c>, <c>retention.bytes</c>, <c>max.message.bytes</c>, and <c>gateway.acks</c> (Gateway's own: the acks of produce requests that name none over HTTP).</summary>
internal static class TopicConfigs
{
    public const string RetentionMs = "retention.ms";
    public const string RetentionBytes = "retention.bytes";
    public const string MaxMessageBytes = "max.message.bytes";
    public const string Acks = "gateway.acks";

    public static IEnumerable<(string Name, string Value, bool IsDefault)> Describe(TopicConfig config, TopicConfig defaults)
    {
        yield return (RetentionMs, config.RetentionMs.ToString(CultureInfo.InvariantCulture), config.RetentionMs == defaults.RetentionMs);
        yield return (RetentionBytes, config.RetentionBytes.ToString(CultureInfo.InvariantCulture), config.RetentionBytes == defaults.RetentionBytes);
        yield return (MaxMessageBytes, config.MaxRecordBytes.ToString(CultureInfo.InvariantCulture), config.MaxRecordBytes == defaults.MaxRecordBytes);
        yield return (Acks, config.Acks == Storage.Acks.Disk ? "disk" : "memory", config.Acks == defaults.Acks);
    }

    /// <summary>The config with these settings applied and checked, or null and why not (INVALID_CONFIG).</summary>
    public static (TopicConfig? Config, string? Problem) Apply(TopicConfig current, IEnumerable<(string Name, string? Value)> settings, StorageLimits limits)
    {
        var config = current;
        foreach (var (name, value) in settings)
        {
            if (value is null)
            {
                continue; // null: the default, which a new topic has anyway
            }
            bool parsed = long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long number);
            switch (name)
            {
                case RetentionMs when parsed:
                    config = config with { RetentionMs = number };
                    break;
                case RetentionBytes when parsed:
                    config = config with { RetentionBytes = number };
                    break;
                case MaxMessageBytes when parsed && number is > 0 and <= int.MaxValue:
                    config = config with { MaxRecordBytes = (int)number };
                    break;
                case Acks when value is "disk" or "memory":
                    config = config with { Acks = value == "disk" ? Storage.Acks.Disk : Storage.Acks.Memory };
                    break;
                case RetentionMs or RetentionBytes or MaxMessageBytes or Acks:
                    return (null, $"'{value}' is not a valid {name}.");
                default:
                    return (null, $"'{name}' is not a topic config here; the configs are {RetentionMs}, {RetentionBytes}, {MaxMessageBytes} and {Acks}.");
            }
        }
        if (config.ValidationError(limits.MaxRecordBytesLimit) is var (key, problem))
        {
            return (null, $"{key}: {problem}");
        }
        return (config, null);
    }
}
