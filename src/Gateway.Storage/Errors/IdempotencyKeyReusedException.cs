namespace Gateway.Storage;

/// <summary>An Idempotency-Key already used for a request with other content.</summary>
public sealed class IdempotencyKeyReusedException()
    : Exception("This Idempotency-Key was used for a request with other content; use a new key for a new request.");
