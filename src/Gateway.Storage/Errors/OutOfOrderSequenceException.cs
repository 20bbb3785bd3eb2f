namespace Gateway.Storage;

/// <summary>
/// A Kafka idempotent producer's batch does not follow its previous one on the partition (Kafka's
/// OUT_OF_ORDER_SEQUENCE_NUMBER): an earlier batch is missing, so this one is refused rather than stored out of order.
/// </summary>
public sealed class OutOfOrderSequenceException(long producerId, int expected, int received)
    : Exception($"Producer {producerId} sent sequence {received}; the partition expects {expected}.");
