using System.Globalization;
using Gateway.Storage;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// A topic's config under Kafka's names: <c>retention.ms</c>, <c>retention.bytes</c>, <c>max.message.bytes</c>, and
/// <c>gateway.acks</c> (Gateway's own: the acks of produce requests that name none over HTTP). What stream processors
/// and admin tools set as a matter of course is taken too: <c>cleanup.policy</c> (<c>compact</c> keeps every record —
/// nothing is compacted, a superset of what compaction keeps — so a compacted topic gets no retention unless one is
/// given), <c>message.timestamp.type=CreateTime</c> and <c>compression.type=producer</c> (what this store does), and
/// the settings that mean nothing on one node with its own storage layout (<see cref="Ignored"/>).
/// </summary>
internal static class TopicConfigs
{
    public const string RetentionMs = "retention.ms";
    public const string RetentionBytes = "retention.bytes";
    public const string MaxMessageBytes = "max.message.bytes";
    public const string Acks = "gateway.acks";
    public const string CleanupPolicy = "cleanup.policy";
    public const string TimestampType = "message.timestamp.type";
    public const string CompressionType = "compression.type";

    /// <summary>Kafka topic settings taken and ignored: segments, replication, flushing and compaction tuning.</summary>
    public static readonly IReadOnlySet<string> Ignored = new HashSet<string>(StringComparer.Ordinal)
    {
        "segment.bytes", "segment.ms", "segment.jitter.ms", "segment.index.bytes", "index.interval.bytes",
        "min.insync.replicas", "unclean.leader.election.enable", "flush.messages", "flush.ms", "preallocate",
        "min.cleanable.dirty.ratio", "delete.retention.ms", "min.compaction.lag.ms", "max.compaction.lag.ms",
        "file.delete.delay.ms", "message.downconversion.enable", "leader.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
    };

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
        bool compact = false;
        bool retentionGiven = false;
        foreach (var (name, value) in settings)
        {
            if (value is null || Ignored.Contains(name))
            {
                continue; // null: the default, which a new topic has anyway
            }
            retentionGiven |= name is RetentionMs or RetentionBytes;
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
                case CleanupPolicy when value.Split(',', StringSplitOptions.TrimEntries).All(p => p is "delete" or "compact"):
                    compact = value.Contains("compact", StringComparison.Ordinal);
                    break;
                case TimestampType when value == "CreateTime":
                case CompressionType when value == "producer":
                    break;
                case TimestampType:
                    return (null, $"'{value}' is not offered for {name}: records keep the producer's time (CreateTime).");
                case CompressionType:
                    return (null, $"'{value}' is not offered for {name}: batches are kept as the producer compressed them (producer).");
                case RetentionMs or RetentionBytes or MaxMessageBytes or Acks or CleanupPolicy:
                    return (null, $"'{value}' is not a valid {name}.");
                default:
                    return (null, $"'{name}' is not a topic config here; the configs are {RetentionMs}, {RetentionBytes}, {MaxMessageBytes}, {Acks}, {CleanupPolicy}, {TimestampType}, {CompressionType} and Kafka's segment, replication and compaction tuning (ignored).");
            }
        }
        if (compact && !retentionGiven)
        {
            config = config with { RetentionMs = -1, RetentionBytes = -1 };
        }
        if (config.ValidationError(limits.MaxRecordBytesLimit) is var (key, problem))
        {
            return (null, $"{key}: {problem}");
        }
        return (config, null);
    }
}
