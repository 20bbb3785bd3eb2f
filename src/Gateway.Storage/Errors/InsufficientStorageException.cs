namespace Gateway.Storage;

/// <summary>The data volume is too full to take the append: nothing was appended. It works again once space is freed.</summary>
public sealed class InsufficientStorageException(long freeBytes, long neededBytes)
    : Exception($"The data volume has {freeBytes} bytes free; appends need at least {neededBytes}. Nothing was written.")
{
    public long FreeBytes { get; } = freeBytes;

    public long NeededBytes { get; } = neededBytes;
}
