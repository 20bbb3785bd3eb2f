namespace Gateway.Storage.Kafka;

/// <summary>A topic of the cluster as this node last saw it; a change of partition count makes a new object that keeps the partitions it had.</summary>
internal sealed class KafkaTopic(KafkaLogStorage storage, string name, TopicConfig config, long createdAt, IReadOnlyList<KafkaPartition> partitions) : ITopic
{
    private int _sticky = -1;

    public string Name { get; } = name;

    public TopicConfig Config { get; } = config;

    /// <summary>Kafka keeps no creation time a client can read: when this node first saw the topic.</summary>
    public long CreatedAt { get; } = createdAt;

    public int PartitionCount => partitions.Count;

    public IReadOnlyList<IPartition> Partitions => partitions;

    internal IReadOnlyList<KafkaPartition> KafkaPartitions => partitions;

    public IPartition GetPartition(int partition) =>
        (uint)partition < (uint)partitions.Count ? partitions[partition] : throw new PartitionNotFoundException(Name, partition, partitions.Count);

    public int NextStickyPartition() => (int)((uint)Interlocked.Increment(ref _sticky) % (uint)partitions.Count);

    /// <summary>Claims the key in the groups log (every node reads it), waiting while an attempt elsewhere holds it.</summary>
    public ValueTask<IIdempotentAttempt> BeginIdempotentAsync(IdempotencyStamp stamp, CancellationToken cancellationToken = default) =>
        storage.Coordination is { } coordination
            ? coordination.BeginIdempotentAsync(Name, stamp, cancellationToken)
            : throw new NotSupportedByBackendException("idempotencyKeys", "This node keeps no Idempotency-Key claims.");
}
