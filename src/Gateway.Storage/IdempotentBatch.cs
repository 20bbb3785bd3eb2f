namespace Gateway.Storage;

/// <summary>A batch appended earlier under an idempotency stamp: where it went, and the content it was for.</summary>
public readonly record struct IdempotentBatch(long BaseOffset, int Count, long RequestHash);
