namespace Gateway.Storage;

/// <summary>Stored data failed its checksum or structure check inside the committed range: reported, never skipped.</summary>
public sealed class LogCorruptedException(string message, Exception? inner = null) : Exception(message, inner);
