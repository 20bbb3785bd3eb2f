using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Gateway.Bench.SseLoad;

/// <summary>What all subscribers of a run share: the run's id (in every produced value), the latency histogram, counters.</summary>
internal sealed class Tally(long runId, int subscribers)
{
    private readonly TaskCompletionSource _allSettled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _connected;
    private int _connectFailed;
    private int _disconnected;
    private int _firstErrors;

    public long RunId { get; } = runId;

    public Histogram Latency { get; } = new();

    public int Connected => Volatile.Read(ref _connected);

    public int ConnectFailed => Volatile.Read(ref _connectFailed);

    /// <summary>Streams that failed or ended after they had connected, before the run stopped them.</summary>
    public int Disconnected => Volatile.Read(ref _disconnected);

    /// <summary>Completes when every subscriber has connected or failed to.</summary>
    public Task AllSettled => _allSettled.Task;

    public void OnConnect(bool ok)
    {
        if (!ok)
        {
            Interlocked.Increment(ref _connectFailed);
        }
        int settled = (ok ? Interlocked.Increment(ref _connected) : Volatile.Read(ref _connected)) + ConnectFailed;
        if (settled >= subscribers)
        {
            _allSettled.TrySetResult();
        }
    }

    public void OnDisconnect() => Interlocked.Increment(ref _disconnected);

    /// <summary>The first few subscriber errors go to stderr; the rest are only counted.</summary>
    public void Report(string error)
    {
        if (Interlocked.Increment(ref _firstErrors) <= 5)
        {
            Console.Error.WriteLine($"subscriber: {error}");
        }
    }
}

/// <summary>
/// One SSE connection with a small hand-written line reader: no per-event allocations. It only looks at <c>data:</c>
/// lines, finds <c>"value":"</c> and reads <c>run.seq.sendTicks.</c> from the value; events of other runs are counted
/// apart, a sequence number seen before is a duplicate, and the latency is now - sendTicks.
/// </summary>
internal sealed class Subscriber(Tally tally, int bufferSize)
{
    private const int MaxLine = 4 * 1024 * 1024;
    private long _received;
    private long _lastSeq = -1;
    private ulong[] _seen = [];
    private long _lastDelivery;

    public long Received => Volatile.Read(ref _received);

    /// <summary>Stopwatch timestamp of the last event of this run, 0 if none.</summary>
    public long LastDelivery => Volatile.Read(ref _lastDelivery);

    public long Duplicates { get; private set; }

    public long Foreign { get; private set; }

    /// <summary>Events that came after one with a higher sequence number (concurrent produce requests race).</summary>
    public long Reordered { get; private set; }

    public bool Connected { get; private set; }

    /// <summary>Set when the stream failed or ended before the run stopped it.</summary>
    public string? Error { get; private set; }

    public async Task RunAsync(HttpClient client, Uri uri, SemaphoreSlim gate, TimeSpan headerTimeout, CancellationToken stop)
    {
        try
        {
            await gate.WaitAsync(stop);
        }
        catch (OperationCanceledException)
        {
            tally.OnConnect(false);
            return;
        }
        bool released = false;
        HttpResponseMessage? response = null;
        using var headers = CancellationTokenSource.CreateLinkedTokenSource(stop);
        try
        {
            headers.CancelAfter(headerTimeout);
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Accept.ParseAdd("text/event-stream");
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headers.Token);
            headers.CancelAfter(Timeout.InfiniteTimeSpan);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                Error = $"HTTP {(int)response.StatusCode}";
                tally.Report($"{uri}: {Error}");
                tally.OnConnect(false);
                return;
            }
            var stream = await response.Content.ReadAsStreamAsync(stop);
            Connected = true;
            gate.Release();
            released = true;
            tally.OnConnect(true);
            await ReadAsync(stream, stop);
            if (!stop.IsCancellationRequested)
            {
                Error = "the stream ended";
                tally.Report(Error);
                tally.OnDisconnect();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            if (!Connected)
            {
                tally.OnConnect(false);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException or InvalidDataException)
        {
            Error = $"{ex.GetType().Name}: {ex.Message}";
            tally.Report(Error);
            if (Connected)
            {
                tally.OnDisconnect();
            }
            else
            {
                tally.OnConnect(false);
            }
        }
        finally
        {
            if (!released)
            {
                gate.Release();
            }
            response?.Dispose();
        }
    }

    private async Task ReadAsync(Stream stream, CancellationToken stop)
    {
        byte[] buffer = new byte[bufferSize];
        int start = 0, end = 0, scanned = 0; // [start, end) is unprocessed; no '\n' in [start, scanned)
        while (true)
        {
            if (end == buffer.Length)
            {
                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    end -= start;
                    scanned -= start;
                    start = 0;
                }
                else if (buffer.Length >= MaxLine)
                {
                    throw new InvalidDataException($"an SSE line longer than {MaxLine} bytes");
                }
                else
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }
            }
            int n = await stream.ReadAsync(buffer.AsMemory(end), stop);
            if (n == 0)
            {
                return;
            }
            long now = Stopwatch.GetTimestamp();
            end += n;
            while (true)
            {
                int nl = buffer.AsSpan(scanned, end - scanned).IndexOf((byte)'\n');
                if (nl < 0)
                {
                    scanned = end;
                    break;
                }
                var line = buffer.AsSpan(start, scanned + nl - start);
                if (line.Length > 0 && line[^1] == '\r')
                {
                    line = line[..^1];
                }
                OnLine(line, now);
                start = scanned = scanned + nl + 1;
            }
            if (start == end)
            {
                start = end = scanned = 0;
            }
        }
    }

    private void OnLine(ReadOnlySpan<byte> line, long now)
    {
        if (!line.StartsWith("data:"u8))
        {
            return;
        }
        int at = line.IndexOf("\"value\":\""u8);
        if (at < 0)
        {
            return;
        }
        var rest = line[(at + 9)..];
        if (!TakeNumber(ref rest, out long run) || !TakeNumber(ref rest, out long seq) || !TakeNumber(ref rest, out long sent) || run != tally.RunId)
        {
            Foreign++;
            return;
        }
        // Records produced concurrently are stored in the order they arrive, which is not quite the order they were sent:
        // a bitmap of the sequence numbers seen tells a late one (counted) from a duplicate (not counted).
        int word = (int)Math.Min(seq >> 6, int.MaxValue - 1);
        if (word >= _seen.Length)
        {
            Array.Resize(ref _seen, Math.Max(word + 1, _seen.Length * 2));
        }
        ulong bit = 1UL << (int)(seq & 63);
        if ((_seen[word] & bit) != 0)
        {
            Duplicates++;
            return;
        }
        _seen[word] |= bit;
        if (seq < _lastSeq)
        {
            Reordered++;
        }
        _lastSeq = Math.Max(_lastSeq, seq);
        Volatile.Write(ref _received, _received + 1);
        Volatile.Write(ref _lastDelivery, now);
        tally.Latency.Record((long)((now - sent) * 1_000_000.0 / Stopwatch.Frequency));
    }

    /// <summary>Digits up to a '.', which is consumed.</summary>
    private static bool TakeNumber(ref ReadOnlySpan<byte> text, out long value)
    {
        value = 0;
        int i = 0;
        for (; i < text.Length && i < 19 && text[i] >= '0' && text[i] <= '9'; i++)
        {
            value = (value * 10) + (text[i] - '0');
        }
        if (i == 0 || i >= text.Length || text[i] != '.')
        {
            return false;
        }
        text = text[(i + 1)..];
        return true;
    }
}

internal static class Clients
{
    /// <summary>
    /// One client for all subscribers: unlimited connections per server; with more than one source address each new
    /// connection binds the next of 127.0.0.1..K (so K x ~28,000 ephemeral ports).
    /// </summary>
    public static HttpClient ForSubscribers(int sources)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = int.MaxValue,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        };
        if (sources > 1)
        {
            int next = 0;
            handler.ConnectCallback = async (context, cancel) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    int i = Interlocked.Increment(ref next);
                    try
                    {
                        socket.SetSocketOption(SocketOptionLevel.IP, (SocketOptionName)24, true); // IP_BIND_ADDRESS_NO_PORT (Linux)
                    }
                    catch (SocketException)
                    {
                    }
                    socket.Bind(new IPEndPoint(new IPAddress([127, 0, 0, (byte)(1 + (i % sources))]), 0));
                    await socket.ConnectAsync(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port, cancel);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }
        return new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public static HttpClient ForProducer() => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = int.MaxValue,
        UseProxy = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(10),
    }, disposeHandler: true)
    { Timeout = TimeSpan.FromSeconds(10) };
}
