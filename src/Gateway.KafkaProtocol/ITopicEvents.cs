namespace Gateway.KafkaProtocol;

/// <summary>
/// What must follow a change to the topics, whichever protocol made it: consumer groups rebalance when a topic grows
/// and forget a deleted topic's offsets; metrics drop its series. The server implements it once for HTTP and Kafka.
/// </summary>
public interface ITopicEvents
{
    /// <summary>A topic's partition count changed.</summary>
    void PartitionsAdded(string topic);

    /// <summary>A topic was deleted.</summary>
    Task DeletedAsync(string topic);
}
