namespace Gateway.Storage;

/// <summary>A record header as Kafka has it: a UTF-8 name and a value that may be null.</summary>
public sealed record RecordHeader(string Name, byte[]? Value);
