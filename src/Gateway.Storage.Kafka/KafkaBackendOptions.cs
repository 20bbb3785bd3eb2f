namespace Gateway.Storage.Kafka;

/// <summary>The Kafka backend's settings (<c>Kafka:*</c>).</summary>
public sealed class KafkaBackendOptions
{
    /// <summary>The cluster's bootstrap servers, host:port[,host:port…].</summary>
    public string BootstrapServers { get; set; } = "";

    /// <summary>Any librdkafka setting for every client this node makes (security.protocol, sasl.*, ssl.*, …).</summary>
    public Dictionary<string, string> Client { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How long a produce, read or admin request to the cluster may take before it fails (503).</summary>
    public int RequestTimeoutMs { get; set; } = 30_000;

    /// <summary>How often topics (also those other clients made), their configs and their offsets are looked up again.</summary>
    public int MetadataRefreshMs { get; set; } = 5_000;

    /// <summary>
    /// The longest the cluster may hold the tail reader's fetch when nothing new is there (Kafka's <c>fetch.wait.max.ms</c>):
    /// a real broker answers as soon as records arrive, so this bounds only idle fetches.
    /// </summary>
    public int TailFetchWaitMs { get; set; } = 100;

    /// <summary>How many of a followed partition's most recent records the node keeps for reads of the tail (at most 8 MB of them).</summary>
    public int TailRecordsPerPartition { get; set; } = 2_048;

    /// <summary>Replication factor of topics this node creates; -1 takes the cluster's default.</summary>
    public short ReplicationFactor { get; set; } = -1;

    /// <summary>
    /// The groups log: HTTP consumer groups as commands every node applies in order (one partition; made by the first
    /// node with 7 days' retention), and <c>{GroupsTopic}-snapshots</c> (compacted) beside it.
    /// </summary>
    public string GroupsTopic { get; set; } = "__gateway_groups";

    /// <summary>How often (at most) a node writes a snapshot of the groups while commands arrive; also after every 10,000 commands.</summary>
    public int GroupSnapshotIntervalMs { get; set; } = 60_000;

    /// <summary>How long an Idempotency-Key is remembered after its first attempt completed (a retry within it is answered from the first).</summary>
    public long IdempotencyWindowMs { get; set; } = 86_400_000;

    /// <summary>What is wrong with these settings, or null.</summary>
    public string? ValidationError() =>
        string.IsNullOrWhiteSpace(BootstrapServers) ? "Kafka:BootstrapServers is required with Storage:Backend=kafka (host:port of the cluster)."
        : RequestTimeoutMs is < 100 or > 600_000 ? "Kafka:RequestTimeoutMs must be between 100 and 600000."
        : MetadataRefreshMs is < 100 or > 600_000 ? "Kafka:MetadataRefreshMs must be between 100 and 600000."
        : TailFetchWaitMs is < 1 or > 10_000 ? "Kafka:TailFetchWaitMs must be between 1 and 10000."
        : TailRecordsPerPartition is < 1 or > 1_000_000 ? "Kafka:TailRecordsPerPartition must be between 1 and 1000000."
        : !TopicName.IsValid(GroupsTopic) || !TopicName.IsValid(GroupsTopic + "-snapshots") ? "Kafka:GroupsTopic must be a Kafka topic name (at most 239 characters of [a-zA-Z0-9._-])."
        : IdempotencyWindowMs is < 1_000 or > 604_800_000 ? "Kafka:IdempotencyWindowMs must be between 1000 and 604800000 (7 days)."
        : GroupSnapshotIntervalMs is < 100 or > 86_400_000 ? "Kafka:GroupSnapshotIntervalMs must be between 100 and 86400000."
        : null;
}
