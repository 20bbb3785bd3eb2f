namespace Gateway.Storage;

/// <summary>One partition of one topic, ordered by topic name then partition number.</summary>
public readonly record struct TopicPartition(string Topic, int Partition) : IComparable<TopicPartition>
{
    public int CompareTo(TopicPartition other)
    {
        int byTopic = string.CompareOrdinal(Topic, other.Topic);
        return byTopic != 0 ? byTopic : Partition.CompareTo(other.Partition);
    }

    public static bool operator <(TopicPartition left, TopicPartition right) => left.CompareTo(right) < 0;

    public static bool operator <=(TopicPartition left, TopicPartition right) => left.CompareTo(right) <= 0;

    public static bool operator >(TopicPartition left, TopicPartition right) => left.CompareTo(right) > 0;

    public static bool operator >=(TopicPartition left, TopicPartition right) => left.CompareTo(right) >= 0;

    public override string ToString() => $"{Topic}/{Partition}";
}
