namespace Gateway.Storage;

/// <summary>A commit named partitions the member does not hold.</summary>
public sealed class PartitionNotAssignedException(IReadOnlyList<TopicPartition> partitions)
    : Exception($"Not assigned to this member: {string.Join(", ", partitions)}.")
{
    public IReadOnlyList<TopicPartition> Partitions { get; } = partitions;
}
