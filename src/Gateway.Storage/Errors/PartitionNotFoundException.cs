namespace Gateway.Storage;

/// <summary>The topic has no partition with that number.</summary>
public sealed class PartitionNotFoundException(string topic, int partition, int partitionCount)
    : Exception($"Topic '{topic}' has {partitionCount} partition(s); partition {partition} does not exist.")
{
    public int PartitionCount { get; } = partitionCount;
}
