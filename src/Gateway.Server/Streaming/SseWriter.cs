using System.Buffers.Text;
using System.IO.Pipelines;
using System.Text;
using Gateway.Storage;

namespace Gateway.Server.Streaming;

/// <summary>Writes the Server-Sent Events wire format (WHATWG HTML §9.2) into a response.</summary>
internal static class SseWriter
{
    public static void Retry(PipeWriter body, int milliseconds) => Write(body, $"retry: {milliseconds}\n\n");

    public static void Comment(PipeWriter body, string text) => Write(body, $": {text}\n\n");

    /// <summary>One event. Data holding line breaks (a stored JSON value may) becomes several <c>data:</c> lines, which the client joins with \n.</summary>
    public static void Event(PipeWriter body, string? id, string type, ReadOnlySpan<byte> data)
    {
        if (id is not null)
        {
            Write(body, "id: ");
            Write(body, id);
            Write(body, "\n");
        }
        EventBody(body, type, data);
    }

    /// <summary>An event whose id is the stream's cursor, written straight into the response (no string per event).</summary>
    public static void Event(PipeWriter body, IReadOnlyDictionary<TopicPartition, long> cursor, string type, ReadOnlySpan<byte> data)
    {
        if (data.IndexOfAny((byte)'\n', (byte)'\r') >= 0)
        {
            Write(body, "id: "u8);
            EventCursor.Write(body, cursor);
            Write(body, "\n"u8);
            EventBody(body, type, data);
            return;
        }
        // The usual event (one data line) goes into one span with one Advance: Kestrel's response writer takes a
        // lock for each, and a subscriber at the tail writes an event per record.
        var raw = EventCursor.Raw(cursor);
        int idLength = Base64Url.GetEncodedLength(raw.Length);
        int typeLength = Encoding.UTF8.GetByteCount(type);
        int size = "id: ".Length + idLength + "\nevent: ".Length + typeLength + "\ndata: ".Length + data.Length + "\n\n".Length;
        var span = body.GetSpan(size);
        int p = Put(span, 0, "id: "u8);
        Base64Url.EncodeToUtf8(raw, span[p..]);
        p = Put(span, p + idLength, "\nevent: "u8);
        p += Encoding.UTF8.GetBytes(type, span[p..]);
        p = Put(span, p, "\ndata: "u8);
        p = Put(span, p, data);
        p = Put(span, p, "\n\n"u8);
        body.Advance(p);
    }

    private static int Put(Span<byte> span, int at, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(span[at..]);
        return at + bytes.Length;
    }

    private static void EventBody(PipeWriter body, string type, ReadOnlySpan<byte> data)
    {
        Write(body, "event: ");
        Write(body, type);
        Write(body, "\n");
        while (true)
        {
            int brk = data.IndexOfAny((byte)'\n', (byte)'\r');
            Write(body, "data: "u8);
            if (brk < 0)
            {
                Write(body, data);
                break;
            }
            byte lineBreak = data[brk];
            Write(body, data[..brk]);
            Write(body, "\n"u8);
            data = data[(brk + 1)..];
            if (lineBreak == '\r' && data.Length > 0 && data[0] == '\n')
            {
                data = data[1..];
            }
        }
        Write(body, "\n\n"u8);
    }

    private static void Write(PipeWriter body, string text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        int written = Encoding.UTF8.GetBytes(text, body.GetSpan(max));
        body.Advance(written);
    }

    private static void Write(PipeWriter body, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(body.GetSpan(bytes.Length));
        body.Advance(bytes.Length);
    }
}
