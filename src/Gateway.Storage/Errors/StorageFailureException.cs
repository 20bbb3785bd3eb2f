namespace Gateway.Storage;

/// <summary>The device failed to persist or read data. Nothing covered by the failure was acknowledged.</summary>
public sealed class StorageFailureException(string message, Exception? inner = null) : Exception(message, inner);
