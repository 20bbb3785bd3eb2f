using System.Text.Json;
using Gateway.Server.Groups;
using Gateway.Server.Records;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.Server.Streaming;

/// <summary>
/// One Server-Sent Events response: its headers, the record events written from positions in partitions (from the
/// shared ring of encoded tail records when it holds them, else from the log), reset events, keep-alives, and
/// flushes that disconnect a subscriber whose socket does not drain.
/// </summary>
internal sealed class EventStream
{
    private readonly HttpContext _context;
    private readonly StreamingOptions _settings;
    private readonly SharedEventCache _cache;
    private readonly List<TopicPartition> _order = [];

    private EventStream(HttpContext context, StreamingOptions settings, SharedEventCache cache)
    {
        _context = context;
        _settings = settings;
        _cache = cache;
    }

    /// <summary>Positions moved into a partition's range, to announce before the next records.</summary>
    public List<PositionReset> Resets { get; } = [];

    /// <summary>Sets the response up as an event stream (nothing is sent yet: <see cref="OpenAsync"/>).</summary>
    public static EventStream Start(HttpContext context, StreamingOptions settings, SharedEventCache cache)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache, no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        SseWriter.Retry(response.BodyWriter, settings.RetryMs);
        return new EventStream(context, settings, cache);
    }

    /// <summary>Sends the headers and what is written so far.</summary>
    public async Task OpenAsync(CancellationToken cancel)
    {
        await _context.Response.StartAsync(cancel);
        await FlushAsync(cancel);
    }

    /// <summary>Writes an <c>event: reset</c> for each position moved since the last call.</summary>
    public void WriteResets()
    {
        foreach (var reset in Resets)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(128);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteString("topic", reset.Topic);
                writer.WriteNumber("partition", reset.Partition);
                writer.WriteNumber("offset", reset.Offset);
                writer.WriteNumber("resetTo", reset.ResetTo);
                writer.WriteString("reason", reset.Reason);
                writer.WriteEndObject();
            }
            SseWriter.Event(_context.Response.BodyWriter, (string?)null, "reset", buffer.WrittenSpan);
        }
        Resets.Clear();
    }

    /// <summary>
    /// Writes the records available at each position (a batch per partition, partitions in order) and moves the
    /// positions past them; true if any was written. <paramref name="topicName"/> is the encoded name when every
    /// position is in one topic.
    /// </summary>
    public async ValueTask<bool> SendAsync(Dictionary<TopicPartition, long> positions, Func<TopicPartition, IPartition> partitionOf, JsonEncodedText? topicName, CancellationToken cancel)
    {
        bool any = false;
        foreach (var (tp, position) in positions)
        {
            // Checked first without allocating: an idle stream wakes here at every keep-alive tick.
            any |= partitionOf(tp).EndOffset > position;
        }
        if (!any)
        {
            return false;
        }
        bool sent = false;
        var body = _context.Response.BodyWriter;
        _order.Clear();
        _order.AddRange(positions.Keys);
        _order.Sort();
        foreach (var tp in _order)
        {
            var log = partitionOf(tp);
            long position = positions[tp];
            if (log.EndOffset <= position)
            {
                continue;
            }
            if (position < log.BeginOffset)
            {
                // Records were deleted under this subscriber: it continues at the begin offset, and says so.
                positions[tp] = position = PositionRange.Clamp(tp, position, log, Resets);
                WriteResets();
            }
            if (_cache.TryCollect(log, position, _settings.BatchRecords, 1024 * 1024, out var shared))
            {
                // Every record is in the shared ring: subscribers at the tail read neither the log nor encode anything.
                foreach (byte[] json in shared.Json)
                {
                    positions[tp] = ++position;
                    SseWriter.Event(body, positions, "record", json);
                }
                sent = true;
                continue;
            }
            var name = topicName ?? JsonEncodedText.Encode(tp.Topic);
            RecordSet records;
            try
            {
                records = await log.ReadAsync(position, _settings.BatchRecords, 1024 * 1024, cancel);
            }
            catch (OffsetOutOfRangeException)
            {
                // Retention moved the begin offset between the check above and the read: continue from it.
                positions[tp] = PositionRange.Clamp(tp, position, log, Resets);
                WriteResets();
                continue;
            }
            using var owned = records;
            foreach (var record in records)
            {
                positions[tp] = record.Offset + 1;
                SseWriter.Event(body, positions, "record", _cache.Get(log, name, record));
                sent = true;
            }
        }
        return sent;
    }

    public async Task SendKeepAliveAsync(CancellationToken cancel)
    {
        SseWriter.Comment(_context.Response.BodyWriter, "keep-alive");
        await FlushAsync(cancel);
    }

    /// <summary>Flushes; a subscriber whose socket does not drain within the send timeout is disconnected.</summary>
    public async Task FlushAsync(CancellationToken cancel)
    {
        var flush = _context.Response.BodyWriter.FlushAsync(cancel);
        if (flush.IsCompletedSuccessfully)
        {
            return;
        }
        try
        {
            await flush.AsTask().WaitAsync(TimeSpan.FromMilliseconds(_settings.SendTimeoutMs), cancel);
        }
        catch (TimeoutException)
        {
            _context.Abort();
            throw new OperationCanceledException("The subscriber stopped reading.", cancel);
        }
    }
}
