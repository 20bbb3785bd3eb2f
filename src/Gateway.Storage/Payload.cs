namespace Gateway.Storage;

/// <summary>A record key or value to append: bytes and the format they were given in, or null (Kafka's null key / tombstone value).</summary>
public readonly ref struct Payload
{
    private readonly bool _present;

    public Payload(ReadOnlySpan<byte> bytes, PayloadFormat format)
    {
        Bytes = bytes;
        Format = format;
        _present = true;
    }

    /// <summary>No payload at all, which differs from an empty one.</summary>
    public static Payload Null => default;

    public ReadOnlySpan<byte> Bytes { get; }

    public PayloadFormat Format { get; }

    public bool IsNull => !_present;

    /// <summary>Bytes the payload takes in a Kafka record: a zigzag length varint and the bytes (a null: one byte).</summary>
    public int EncodedSize => IsNull ? 1 : VarintSize((long)Bytes.Length << 1) + Bytes.Length;

    private static int VarintSize(long zigzag)
    {
        int size = 1;
        for (ulong v = (ulong)zigzag; v >= 0x80; v >>= 7)
        {
            size++;
        }
        return size;
    }
}
