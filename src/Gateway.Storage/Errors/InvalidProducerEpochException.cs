namespace Gateway.Storage;

/// <summary>
/// A Kafka idempotent producer's batch carries an epoch older than one the partition has seen for its producer id
/// (Kafka's INVALID_PRODUCER_EPOCH): a newer incarnation fenced it.
/// </summary>
public sealed class InvalidProducerEpochException(long producerId, short epoch, short current)
    : Exception($"Producer {producerId} sent epoch {epoch}; the partition has seen epoch {current}.");
