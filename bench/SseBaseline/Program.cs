using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http.Features;

// B5: a trivial Server-Sent Events server, the ceiling the gateway's streaming is measured against (bench/README.md).
//   POST /publish  the body (any bytes, <= 1 MiB) becomes ONE pre-serialized event "id: n\nevent: record\ndata: <body>\n\n",
//                  shared by every subscriber; answers {"id":n}
//   GET  /events   subscribes: "retry: 3000", then every event published from now on, and ": keep-alive" every 15 s
//   GET  /health   "ok";  GET /stats: subscribers, published, overflow disconnects
// Each subscriber has a bounded channel (Sse:Capacity, default 1,000 events). A subscriber whose channel is full is
// DISCONNECTED (its connection is aborted), never silently skipped: like the gateway, what a client receives is
// gap-free or it sees the connection fail. The address comes from --urls.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    kestrel.Limits.MaxRequestBodySize = 1024 * 1024;
});

using var hub = new Hub(
    builder.Configuration.GetValue("Sse:Capacity", 1_000),
    TimeSpan.FromSeconds(builder.Configuration.GetValue("Sse:KeepAliveSeconds", 15)));

var app = builder.Build();

app.MapPost("/publish", async (HttpContext context) =>
{
    var reader = context.Request.BodyReader;
    ReadResult read;
    while (true)
    {
        read = await reader.ReadAsync(context.RequestAborted);
        if (read.IsCompleted || read.IsCanceled)
        {
            break;
        }
        reader.AdvanceTo(read.Buffer.Start, read.Buffer.End); // keep it all until the body is complete
    }
    long id = hub.Publish(read.Buffer);
    reader.AdvanceTo(read.Buffer.End);
    byte[] answer = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $$"""{"id":{{id}}}"""));
    context.Response.StatusCode = StatusCodes.Status200OK;
    context.Response.ContentType = "application/json";
    context.Response.ContentLength = answer.Length;
    await context.Response.Body.WriteAsync(answer, context.RequestAborted);
});

app.MapGet("/events", hub.SubscribeAsync);
app.MapGet("/health", () => Results.Text("ok"));
app.MapGet("/stats", () => Results.Text(hub.Stats(), "application/json"));

app.Run();

/// <summary>The subscribers and the fan-out of shared, pre-serialized events.</summary>
internal sealed class Hub : IDisposable
{
    private static readonly byte[] RetryBytes = "retry: 3000\n\n"u8.ToArray();
    private static readonly byte[] KeepAliveBytes = ": keep-alive\n\n"u8.ToArray();

    private readonly Lock _lock = new();
    private readonly int _capacity;
    private readonly Timer _keepAlive;
    private Subscriber[] _subscribers = [];
    private long _sequence;
    private long _overflows;

    public Hub(int capacity, TimeSpan keepAlive)
    {
        _capacity = capacity;
        _keepAlive = new Timer(_ => Broadcast(KeepAliveBytes), null, keepAlive, keepAlive);
    }

    /// <summary>Encodes the event once and hands the same bytes to every subscriber; returns its id.</summary>
    public long Publish(ReadOnlySequence<byte> data)
    {
        lock (_lock) // one publisher at a time: every subscriber sees the ids in order
        {
            long id = ++_sequence;
            Broadcast(Encode(id, data));
            return id;
        }
    }

    public async Task SubscribeAsync(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache, no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var subscriber = new Subscriber(context, Channel.CreateBounded<byte[]>(new BoundedChannelOptions(_capacity)
        {
            SingleReader = true,
            SingleWriter = true, // writes happen under _lock
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: the subscriber is then disconnected
        }));
        lock (_lock) // subscribed before the client sees the headers
        {
            _subscribers = [.. _subscribers, subscriber];
        }
        var cancel = context.RequestAborted;
        try
        {
            var body = response.BodyWriter;
            body.Write(RetryBytes);
            await response.StartAsync(cancel);
            await body.FlushAsync(cancel);
            var events = subscriber.Channel.Reader;
            while (await events.WaitToReadAsync(cancel))
            {
                while (events.TryRead(out byte[]? item))
                {
                    body.Write(item);
                }
                var flushed = await body.FlushAsync(cancel);
                if (flushed.IsCompleted || flushed.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The client left, or was disconnected for falling behind.
        }
        finally
        {
            lock (_lock)
            {
                _subscribers = [.. _subscribers.Where(s => s != subscriber)];
            }
        }
    }

    public string Stats()
    {
        int subscribers = Volatile.Read(ref _subscribers).Length;
        return string.Create(CultureInfo.InvariantCulture,
            $$"""{"subscribers":{{subscribers}},"published":{{Interlocked.Read(ref _sequence)}},"overflowDisconnects":{{Interlocked.Read(ref _overflows)}}}""");
    }

    public void Dispose() => _keepAlive.Dispose();

    private void Broadcast(byte[] item)
    {
        lock (_lock)
        {
            foreach (var subscriber in _subscribers)
            {
                if (!subscriber.Channel.Writer.TryWrite(item) && subscriber.Channel.Writer.TryComplete())
                {
                    Interlocked.Increment(ref _overflows);
                    subscriber.Context.Abort(); // full: disconnect rather than skip events
                }
            }
        }
    }

    /// <summary>"id: n\nevent: record\ndata: ...\n\n"; a line break in the data starts another data line.</summary>
    private static byte[] Encode(long id, ReadOnlySequence<byte> data)
    {
        var buffer = new ArrayBufferWriter<byte>((int)data.Length + 48);
        Write(buffer, Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"id: {id}\nevent: record\ndata: ")));
        ReadOnlySpan<byte> rest = data.IsSingleSegment ? data.FirstSpan : data.ToArray();
        while (true)
        {
            int brk = rest.IndexOfAny((byte)'\n', (byte)'\r');
            if (brk < 0)
            {
                Write(buffer, rest);
                break;
            }
            Write(buffer, rest[..brk]);
            Write(buffer, "\ndata: "u8);
            bool crlf = rest[brk] == '\r' && brk + 1 < rest.Length && rest[brk + 1] == '\n';
            rest = rest[(brk + (crlf ? 2 : 1))..];
        }
        Write(buffer, "\n\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private static void Write(ArrayBufferWriter<byte> buffer, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(buffer.GetSpan(bytes.Length));
        buffer.Advance(bytes.Length);
    }

    private sealed record Subscriber(HttpContext Context, Channel<byte[]> Channel);
}
