namespace Gateway.Storage;

/// <summary>A conditional append expected another end offset than the partition has.</summary>
public sealed class OffsetMismatchException(long expectedOffset, long endOffset)
    : Exception($"Expected end offset {expectedOffset}, but the partition ends at {endOffset}.")
{
    public long ExpectedOffset { get; } = expectedOffset;

    public long EndOffset { get; } = endOffset;
}
