namespace Gateway.Storage;

/// <summary>
/// What makes an append idempotent, stored in the batch header's producer fields (so it is as durable as the
/// data and rebuilt from the log on start): <see cref="ProducerId"/> identifies the request (a hash of its
/// Idempotency-Key, never negative), <see cref="RequestHash"/> its content (48 bits, in producer epoch and base
/// sequence), to tell a retry from a different request reusing the key.
/// </summary>
public readonly record struct IdempotencyStamp(long ProducerId, long RequestHash)
{
    public const long HashMask = (1L << 48) - 1;
}
