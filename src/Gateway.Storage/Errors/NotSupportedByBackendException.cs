namespace Gateway.Storage;

/// <summary>
/// The storage backend does not offer what the request needs (<paramref name="capability"/>: e.g. <c>idempotencyKeys</c>);
/// the HTTP layer answers 501 <c>not_supported</c> naming it.
/// </summary>
public sealed class NotSupportedByBackendException(string capability, string message) : Exception(message)
{
    public string Capability { get; } = capability;
}
