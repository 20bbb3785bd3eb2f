namespace Gateway.Storage;

/// <summary>A requested offset lies outside [beginOffset, endOffset] of the partition.</summary>
public sealed class OffsetOutOfRangeException(long offset, long beginOffset, long endOffset)
    : Exception($"Offset {offset} is outside the partition's range [{beginOffset}, {endOffset}].")
{
    public long Offset { get; } = offset;

    public long BeginOffset { get; } = beginOffset;

    public long EndOffset { get; } = endOffset;
}
