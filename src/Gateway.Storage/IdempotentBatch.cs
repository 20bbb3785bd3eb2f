namespace Gateway.Storage;

/// <summary>
/// A batch appended earlier under an idempotency stamp: where it went, and the content it was for. <see cref="Offsets"/>
/// gives each record's offset where they are not <see cref="BaseOffset"/> onwards without gaps (a backend whose
/// partitions other writers share: the Kafka backend).
/// </summary>
public readonly record struct IdempotentBatch(long BaseOffset, int Count, long RequestHash, IReadOnlyList<long>? Offsets = null)
{
    /// <summary>The offset of the batch's <paramref name="index"/>th record.</summary>
    public long OffsetOf(int index) => Offsets is { } offsets ? offsets[index] : BaseOffset + index;

    /// <summary>The offset after the batch's last record.</summary>
    public long EndOffset => Offsets is { Count: > 0 } offsets ? offsets[^1] + 1 : BaseOffset + Count;
}
