using Gateway.KafkaProtocol;
using Gateway.Server.Observability;
using Gateway.Storage;

namespace Gateway.Server.Topics;

/// <summary>What follows a topic's growth or deletion, over HTTP and Kafka alike: groups rebalance or forget its offsets; metrics drop its series.</summary>
public sealed class TopicEvents(IGroupCoordinator groups, GatewayMetrics metrics) : ITopicEvents
{
    public void PartitionsAdded(string topic) => groups.OnTopicChanged(topic);

    public async Task DeletedAsync(string topic)
    {
        await groups.OnTopicDeletedAsync(topic);
        metrics.TopicDeleted(topic);
    }
}
