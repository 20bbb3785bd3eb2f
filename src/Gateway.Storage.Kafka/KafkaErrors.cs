using Confluent.Kafka;

namespace Gateway.Storage.Kafka;

/// <summary>
/// The cluster's errors as the port's: a missing topic is 404's; everything else is 503's (unreachable, timed out,
/// refused) — a partition the client says it does not know included: the port has checked the number against the
/// topic already, so that is the client's metadata lagging behind a leader change, not a missing partition.
/// </summary>
internal static class KafkaErrors
{
    public static Exception Map(Error error, string topic, int partition, string what) => error.Code switch
    {
        ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic => new TopicNotFoundException(topic),
        ErrorCode.MsgSizeTooLarge => new BatchTooLargeException(0, 0),
        _ => new StorageFailureException($"The Kafka cluster failed a {what} of {topic}/{partition}: {error.Reason} ({error.Code})."),
    };
}
