using System.Buffers.Binary;
using System.Text;

namespace Gateway.KafkaProtocol.Protocol;

/// <summary>
/// Reads Kafka's primitive types, big-endian, from one request. Every read is bounds-checked: a request that ends
/// early or claims more than it holds throws <see cref="MalformedRequestException"/>, never reads past its frame.
/// </summary>
public ref struct KafkaReader(ReadOnlySpan<byte> buffer)
{
    private readonly ReadOnlySpan<byte> _buffer = buffer;
    private int _position;

    public readonly int Position => _position;

    public readonly int Remaining => _buffer.Length - _position;

    public sbyte ReadInt8() => (sbyte)Take(1)[0];

    public bool ReadBool() => Take(1)[0] != 0;

    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(2));

    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    /// <summary>An unsigned varint (flexible versions' lengths and tag numbers).</summary>
    public uint ReadUnsignedVarint()
    {
        uint value = 0;
        for (int shift = 0; shift < 35; shift += 7)
        {
            byte b = Take(1)[0];
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }
        throw new MalformedRequestException("A varint is longer than five bytes.");
    }

    public string ReadString() => ReadNullableString() ?? throw new MalformedRequestException("A string that may not be null is null.");

    public string? ReadNullableString()
    {
        short length = ReadInt16();
        return length switch
        {
            -1 => null,
            < -1 => throw new MalformedRequestException($"A string length of {length}."),
            _ => Decode(Take(length)),
        };
    }

    public string? ReadCompactNullableString()
    {
        uint length = ReadUnsignedVarint();
        return length == 0 ? null : Decode(Take(Length(length - 1)));
    }

    public string ReadCompactString() => ReadCompactNullableString() ?? throw new MalformedRequestException("A string that may not be null is null.");

    /// <summary>Nullable bytes with an int32 length (a record set); the span points into the request.</summary>
    public ReadOnlySpan<byte> ReadNullableBytes(out bool isNull)
    {
        int length = ReadInt32();
        isNull = length == -1;
        if (length < -1)
        {
            throw new MalformedRequestException($"A byte length of {length}.");
        }
        return isNull ? default : Take(length);
    }

    /// <summary>An array's element count (int32). -1 is a null array: given as -1 where <paramref name="nullable"/>, refused elsewhere.</summary>
    public int ReadArrayLength(int minElementBytes = 1, bool nullable = false)
    {
        int count = ReadInt32();
        if (count < -1 || (count == -1 && !nullable))
        {
            throw new MalformedRequestException($"An array length of {count}.");
        }
        // A count the rest of the request cannot hold is a lie: refuse it before anything is allocated for it.
        if (count > 0 && (long)count * minElementBytes > Remaining)
        {
            throw new MalformedRequestException($"An array of {count} elements in {Remaining} bytes.");
        }
        return count;
    }

    /// <summary>A compact array's element count (varint N+1; 0 is null, given as -1).</summary>
    public int ReadCompactArrayLength(int minElementBytes = 1)
    {
        uint encoded = ReadUnsignedVarint();
        if (encoded == 0)
        {
            return -1;
        }
        int count = Length(encoded - 1);
        if ((long)count * minElementBytes > Remaining)
        {
            throw new MalformedRequestException($"An array of {count} elements in {Remaining} bytes.");
        }
        return count;
    }

    /// <summary>Skips a flexible version's tagged fields (none is understood here).</summary>
    public void SkipTaggedFields()
    {
        uint count = ReadUnsignedVarint();
        for (uint i = 0; i < count; i++)
        {
            ReadUnsignedVarint(); // tag
            Take(Length(ReadUnsignedVarint()));
        }
    }

    public ReadOnlySpan<byte> ReadRest() => Take(Remaining);

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > Remaining)
        {
            throw new MalformedRequestException($"The request ends {count - Remaining} byte(s) early.");
        }
        var span = _buffer.Slice(_position, count);
        _position += count;
        return span;
    }

    private readonly int Length(uint length) =>
        length > int.MaxValue || length > (uint)Remaining ? throw new MalformedRequestException($"A length of {length} in {Remaining} bytes.") : (int)length;

    private static string Decode(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return Utf8Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new MalformedRequestException("A string is not valid UTF-8.");
        }
    }

    private static readonly UTF8Encoding Utf8Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
