namespace Gateway.Storage;

/// <summary>An encoded batch is larger than one log page can hold; the producer must split it.</summary>
public sealed class BatchTooLargeException(int size, int limit)
    : Exception($"The records for one partition encode to {size} bytes; at most {limit} fit in one append.")
{
    public int Size { get; } = size;

    public int Limit { get; } = limit;
}
