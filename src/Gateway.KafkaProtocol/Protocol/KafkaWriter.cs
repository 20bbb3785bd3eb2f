using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Gateway.KafkaProtocol.Protocol;

/// <summary>Writes Kafka's primitive types, big-endian, into a response buffer.</summary>
public sealed class KafkaWriter(IBufferWriter<byte> output)
{
    public void WriteInt8(sbyte value) => WriteByte((byte)value);

    public void WriteBool(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    public void WriteInt16(short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(output.GetSpan(2), value);
        output.Advance(2);
    }

    public void WriteInt32(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(output.GetSpan(4), value);
        output.Advance(4);
    }

    public void WriteInt64(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(output.GetSpan(8), value);
        output.Advance(8);
    }

    public void WriteUnsignedVarint(uint value)
    {
        while (value >= 0x80)
        {
            WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        WriteByte((byte)value);
    }

    public void WriteString(string value) => WriteNullableString(value);

    public void WriteNullableString(string? value)
    {
        if (value is null)
        {
            WriteInt16(-1);
            return;
        }
        int length = Encoding.UTF8.GetByteCount(value);
        WriteInt16(checked((short)length));
        Encoding.UTF8.GetBytes(value, output);
    }

    public void WriteCompactNullableString(string? value)
    {
        if (value is null)
        {
            WriteUnsignedVarint(0);
            return;
        }
        WriteUnsignedVarint((uint)Encoding.UTF8.GetByteCount(value) + 1);
        Encoding.UTF8.GetBytes(value, output);
    }

    public void WriteArrayLength(int count) => WriteInt32(count);

    public void WriteCompactArrayLength(int count) => WriteUnsignedVarint(count < 0 ? 0 : (uint)count + 1);

    /// <summary>No tagged fields (flexible versions).</summary>
    public void WriteEmptyTaggedFields() => WriteUnsignedVarint(0);

    public void WriteBytes(ReadOnlySpan<byte> bytes) => output.Write(bytes);

    /// <summary>Makes room for <paramref name="bytes"/> more at once (a fetch answer's record sets), so the buffer grows once.</summary>
    public void Reserve(int bytes) => output.GetSpan(bytes);

    /// <summary>
    /// Writes <paramref name="bytes"/> owned by <paramref name="owner"/>: attached to a <see cref="ResponseBuffer"/>
    /// (which then holds the owner until the answer is written), copied into any other output (and the owner released).
    /// </summary>
    public void WriteOwned(IReadOnlyList<ReadOnlyMemory<byte>> bytes, IDisposable owner)
    {
        if (output is ResponseBuffer response)
        {
            foreach (var piece in bytes)
            {
                response.Attach(piece);
            }
            response.Hold(owner);
            return;
        }
        using (owner)
        {
            foreach (var piece in bytes)
            {
                WriteBytes(piece.Span);
            }
        }
    }

    private void WriteByte(byte value)
    {
        output.GetSpan(1)[0] = value;
        output.Advance(1);
    }
}
