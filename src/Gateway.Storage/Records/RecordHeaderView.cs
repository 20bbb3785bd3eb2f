namespace Gateway.Storage.Records;

/// <summary>A stored record header viewed in place: its name and value bytes (UTF-8 when produced through the API).</summary>
public readonly ref struct RecordHeaderView(string name, bool valueIsNull, ReadOnlySpan<byte> value)
{
    public string Name { get; } = name;

    public bool ValueIsNull { get; } = valueIsNull;

    public ReadOnlySpan<byte> Value { get; } = value;
}
