using Confluent.Kafka;

namespace Gateway.Storage.Kafka;

/// <summary>The cluster's errors as the port's: a missing topic or partition is 404's; everything else is 503's (unreachable, timed out, refused).</summary>
internal static class KafkaErrors
{
    public static Exception Map(Error error, string topic, int partition, string what) => error.Code switch
    {
        ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic => new TopicNotFoundException(topic),
        ErrorCode.Local_UnknownPartition => new PartitionNotFoundException(topic, partition, 0),
        ErrorCode.MsgSizeTooLarge => new BatchTooLargeException(0, 0),
        _ => new StorageFailureException($"The Kafka cluster failed a {what} of {topic}/{partition}: {error.Reason} ({error.Code})."),
    };
}
