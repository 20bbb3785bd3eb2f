using Gateway.Storage;

namespace Gateway.KafkaProtocol.Protocol;

/// <summary>Kafka's error codes, as the protocol defines them.</summary>
public static class ErrorCode
{
    public const short UnknownServerError = -1;
    public const short None = 0;
    public const short OffsetOutOfRange = 1;
    public const short CorruptMessage = 2;
    public const short UnknownTopicOrPartition = 3;
    public const short RequestTimedOut = 7;
    public const short MessageTooLarge = 10;
    public const short InvalidTopic = 17;
    public const short CoordinatorNotAvailable = 15;
    public const short RecordListTooLarge = 18;
    public const short InvalidRequiredAcks = 21;
    public const short TopicAuthorizationFailed = 29;
    public const short GroupAuthorizationFailed = 30;
    public const short UnsupportedSaslMechanism = 33;
    public const short IllegalSaslState = 34;
    public const short SaslAuthenticationFailed = 58;
    public const short IllegalGeneration = 22;
    public const short InconsistentGroupProtocol = 23;
    public const short InvalidGroupId = 24;
    public const short UnknownMemberId = 25;
    public const short InvalidSessionTimeout = 26;
    public const short RebalanceInProgress = 27;
    public const short TopicAlreadyExists = 36;
    public const short InvalidPartitions = 37;
    public const short InvalidReplicationFactor = 38;
    public const short InvalidReplicaAssignment = 39;
    public const short InvalidConfig = 40;
    public const short UnsupportedVersion = 35;
    public const short OutOfOrderSequenceNumber = 45;
    public const short InvalidProducerEpoch = 47;
    public const short UnknownProducerId = 59;
    public const short InvalidRequest = 42;
    public const short KafkaStorageError = 56;
    public const short NonEmptyGroup = 68;
    public const short GroupIdNotFound = 69;
    public const short UnsupportedCompressionType = 76;
    public const short MemberIdRequired = 79;
    public const short InvalidRecord = 87;

    /// <summary>The code for a storage error; anything unexpected is UNKNOWN_SERVER_ERROR (and logged by the caller).</summary>
    public static short Of(Exception ex) => ex switch
    {
        KafkaErrorException kafka => kafka.Code,
        TopicNotFoundException or PartitionNotFoundException => UnknownTopicOrPartition,
        TopicExistsException => TopicAlreadyExists,
        OffsetOutOfRangeException => OffsetOutOfRange,
        BatchTooLargeException => MessageTooLarge,
        OutOfOrderSequenceException => OutOfOrderSequenceNumber,
        InvalidProducerEpochException => InvalidProducerEpoch,
        LogCorruptedException or StorageFailureException or InsufficientStorageException => KafkaStorageError,
        _ => UnknownServerError,
    };
}

/// <summary>A refusal that is already one of Kafka's error codes (authorization, say), answered for its topic, partition or group.</summary>
public sealed class KafkaErrorException(short code, string message) : Exception(message)
{
    public short Code { get; } = code;
}
