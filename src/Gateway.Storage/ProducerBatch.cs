namespace Gateway.Storage;

/// <summary>
/// A batch of a Kafka idempotent producer, as its header names it: the producer id the broker handed out
/// (InitProducerId), the producer's epoch and the sequence number of the batch's first record. The log accepts a
/// producer's batches on one partition only in sequence (Kafka's rule), so a retried batch lands once.
/// </summary>
public readonly record struct ProducerBatch(long ProducerId, short Epoch, int BaseSequence, int Count)
{
    /// <summary>
    /// Producer ids below this are Kafka producers'; the batch header's producer fields at or above it hold an HTTP
    /// <see cref="IdempotencyStamp"/> instead. The two share the header's fields and never each other's ids.
    /// </summary>
    public const long ProducerIdLimit = 1L << 48;

    /// <summary>The sequence of the batch's last record; sequences wrap from <see cref="int.MaxValue"/> to 0.</summary>
    public int LastSequence => (int)(((long)BaseSequence + Count - 1) % ((long)int.MaxValue + 1));

    /// <summary>Whether <paramref name="next"/> is the sequence right after <paramref name="last"/>.</summary>
    public static bool Follows(int last, int next) => next == (last == int.MaxValue ? 0 : last + 1);
}
