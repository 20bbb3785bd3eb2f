using System.Buffers;
using System.Buffers.Text;
using System.Text;
using Gateway.Storage;

namespace Gateway.Server.Streaming;

/// <summary>
/// The SSE event id: an opaque token holding the next offset of every partition of a stream, so that
/// <c>Last-Event-ID</c> resumes exactly after the last event received. Compact: base64url of varints, topics
/// named once.
/// </summary>
public static class EventCursor
{
    private const byte Version = 1;

    // Scratch for the raw cursor (and its sorted partitions) between filling and base64-encoding it; never held across an await.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_raw;

    [ThreadStatic]
    private static List<KeyValuePair<TopicPartition, long>>? t_sorted;

    public static string Encode(IReadOnlyDictionary<TopicPartition, long> positions) => Base64Url.EncodeToString(Raw(positions));

    /// <summary>Writes the cursor's text (UTF-8) to <paramref name="output"/>, as <see cref="Encode"/> spells it, without allocating.</summary>
    public static void Write(IBufferWriter<byte> output, IReadOnlyDictionary<TopicPartition, long> positions)
    {
        var raw = Raw(positions);
        int length = Base64Url.GetEncodedLength(raw.Length);
        Base64Url.EncodeToUtf8(raw, output.GetSpan(length));
        output.Advance(length);
    }

    /// <summary>The cursor before base64, in a per-thread buffer valid until the thread's next call.</summary>
    internal static ReadOnlySpan<byte> Raw(IReadOnlyDictionary<TopicPartition, long> positions)
    {
        var buffer = t_raw ??= new ArrayBufferWriter<byte>(64);
        buffer.ResetWrittenCount();
        buffer.GetSpan(1)[0] = Version;
        buffer.Advance(1);
        // Partitions sorted by topic, then number, in a per-thread list: each topic is one run, named once.
        var sorted = t_sorted ??= [];
        sorted.Clear();
        sorted.AddRange(positions);
        sorted.Sort(static (a, b) => a.Key.CompareTo(b.Key));
        int topics = 0;
        for (int i = 0; i < sorted.Count; i++)
        {
            topics += i == 0 || sorted[i].Key.Topic != sorted[i - 1].Key.Topic ? 1 : 0;
        }
        WriteVarint(buffer, (ulong)topics);
        for (int start = 0, end; start < sorted.Count; start = end)
        {
            string topic = sorted[start].Key.Topic;
            end = start + 1;
            while (end < sorted.Count && sorted[end].Key.Topic == topic)
            {
                end++;
            }
            WriteTopic(buffer, topic);
            WriteVarint(buffer, (ulong)(end - start));
            for (int i = start; i < end; i++)
            {
                WriteVarint(buffer, (ulong)sorted[i].Key.Partition);
                WriteVarint(buffer, (ulong)sorted[i].Value);
            }
        }
        return buffer.WrittenSpan;
    }

    private static void WriteTopic(ArrayBufferWriter<byte> buffer, string topic)
    {
        int length = Encoding.UTF8.GetByteCount(topic);
        WriteVarint(buffer, (ulong)length);
        Encoding.UTF8.GetBytes(topic, buffer.GetSpan(length));
        buffer.Advance(length);
    }

    /// <summary>Reads a cursor; false for anything this server did not write.</summary>
    public static bool TryDecode(string? text, out Dictionary<TopicPartition, long> positions)
    {
        positions = [];
        if (string.IsNullOrEmpty(text) || text.Length > 64 * 1024)
        {
            return false;
        }
        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(text);
        }
        catch (FormatException)
        {
            return false;
        }
        int p = 0;
        if (bytes.Length == 0 || bytes[p++] != Version || !TryReadVarint(bytes, ref p, out ulong topics) || topics > 100_000)
        {
            return false;
        }
        for (ulong t = 0; t < topics; t++)
        {
            if (!TryReadVarint(bytes, ref p, out ulong nameLength) || nameLength > 249 || p + (int)nameLength > bytes.Length)
            {
                return false;
            }
            string topic = Encoding.UTF8.GetString(bytes, p, (int)nameLength);
            p += (int)nameLength;
            if (!TryReadVarint(bytes, ref p, out ulong count) || count > 100_000)
            {
                return false;
            }
            for (ulong i = 0; i < count; i++)
            {
                if (!TryReadVarint(bytes, ref p, out ulong partition) || partition > int.MaxValue
                    || !TryReadVarint(bytes, ref p, out ulong offset) || offset > long.MaxValue)
                {
                    return false;
                }
                positions[new TopicPartition(topic, (int)partition)] = (long)offset;
            }
        }
        return p == bytes.Length;
    }

    private static void WriteVarint(ArrayBufferWriter<byte> buffer, ulong value)
    {
        var span = buffer.GetSpan(10);
        int i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[i++] = (byte)value;
        buffer.Advance(i);
    }

    private static bool TryReadVarint(byte[] bytes, ref int p, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && p < bytes.Length; shift += 7)
        {
            byte b = bytes[p++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }
        return false;
    }
}
