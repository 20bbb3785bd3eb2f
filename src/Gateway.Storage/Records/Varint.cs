namespace Gateway.Storage.Records;

/// <summary>Zig-zag varints in 7-bit groups, as Kafka's <c>ByteUtils.writeVarint</c> / <c>writeVarlong</c> write them.</summary>
internal static class Varint
{
    public static int SizeOf(long value)
    {
        ulong v = (ulong)((value << 1) ^ (value >> 63));
        int size = 1;
        while (v >= 0x80)
        {
            v >>= 7;
            size++;
        }
        return size;
    }

    public static int Write(Span<byte> destination, long value)
    {
        ulong v = (ulong)((value << 1) ^ (value >> 63));
        int i = 0;
        while (v >= 0x80)
        {
            destination[i++] = (byte)(v | 0x80);
            v >>= 7;
        }
        destination[i++] = (byte)v;
        return i;
    }

    /// <summary>Reads a varint; returns false when the input ends early or the value overflows 64 bits.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, ref int position, out long value)
    {
        ulong result = 0;
        int shift = 0;
        while (position < source.Length && shift < 64)
        {
            byte b = source[position++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                value = (long)(result >> 1) ^ -(long)(result & 1);
                return true;
            }
            shift += 7;
        }
        value = 0;
        return false;
    }
}
