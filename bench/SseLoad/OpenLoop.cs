using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Gateway.Bench.SseLoad;

/// <summary>
/// http mode: open-loop latency of one request shape. Requests are due at a fixed rate (request i at start + i/R)
/// whatever the server does; a pool of keep-alive connections takes them in due order, and each latency is counted
/// from the moment the request was due — so time spent waiting for a free connection counts (no coordinated
/// omission, as in wrk2). The client speaks HTTP/1.1 over raw sockets (Content-Length and chunked answers) so that
/// it costs far less per request than the server it measures.
/// </summary>
internal static class OpenLoop
{
    public static async Task<int> RunAsync(Options o)
    {
        byte[] body = o.BodyFile is null ? [] : await File.ReadAllBytesAsync(o.BodyFile);
        var head = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"{(o.BodyFile is null ? "GET" : "POST")} {o.Path} HTTP/1.1\r\n")
            .Append(CultureInfo.InvariantCulture, $"Host: {o.Url.Authority}\r\n");
        if (o.BodyFile is not null)
        {
            head.Append(CultureInfo.InvariantCulture, $"Content-Type: {o.ContentType}\r\nContent-Length: {body.Length}\r\n");
        }
        byte[] request = [.. Encoding.ASCII.GetBytes(head.Append("\r\n").ToString()), .. body];

        var endpoint = new IPEndPoint(IPAddress.Parse(o.Url.Host), o.Url.Port);
        var connections = new List<Connection>();
        for (int i = 0; i < o.Connections; i++)
        {
            connections.Add(await Connection.OpenAsync(endpoint));
        }

        var due = Channel.CreateUnbounded<Due>(new UnboundedChannelOptions { SingleWriter = true });
        var latency = new Histogram();
        long errors = 0, socketErrors = 0;
        var workers = connections.Select(c => Task.Run(async () =>
        {
            await foreach (var (dueTicks, measured) in due.Reader.ReadAllAsync())
            {
                try
                {
                    int status = await c.ExchangeAsync(request, endpoint);
                    long micros = (Stopwatch.GetTimestamp() - dueTicks) * 1_000_000 / Stopwatch.Frequency;
                    if (!measured)
                    {
                        continue;
                    }
                    if (status is >= 200 and < 300)
                    {
                        latency.Record(micros);
                    }
                    else
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
                catch (Exception ex) when (ex is SocketException or IOException or InvalidDataException)
                {
                    Interlocked.Increment(ref socketErrors);
                    await c.ReconnectAsync(endpoint);
                }
            }
        })).ToList();

        long warmup = (long)(o.Rate * o.Warmup);
        long total = (long)(o.Rate * o.Seconds);
        double ticksPerRequest = Stopwatch.Frequency / o.Rate;
        long begin = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 20);
        long start = begin + (long)(warmup * ticksPerRequest);
        // The schedule runs on its own thread and wakes every millisecond (the timer's resolution here) to release
        // every request due by then: a request may go out up to ~1 ms after it was due, which its latency includes.
        // Requests of the warm-up (JIT, connections) are sent on the same schedule and not counted.
        var scheduled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var scheduler = new Thread(() =>
        {
            for (long i = 0; i < warmup + total; i++)
            {
                long when = begin + (long)(i * ticksPerRequest);
                while (Stopwatch.GetTimestamp() < when)
                {
                    Thread.Sleep(1);
                }
                due.Writer.TryWrite(new Due(when, i >= warmup));
            }
            due.Writer.Complete();
            scheduled.SetResult();
        })
        { IsBackground = true, Name = "schedule" };
        scheduler.Start();
        // Never block a pool thread: pinned to one core the pool starts with one, and a blocked one stalls every
        // connection until the pool adds a thread (~0.5 s).
        await scheduled.Task;
        double scheduleSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        bool drained = await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(o.Drain)).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default);
        double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        foreach (var c in connections)
        {
            c.Dispose();
        }

        long completed = latency.Count;
        var line = new StringBuilder().Append(CultureInfo.InvariantCulture, $"http path={o.Path} rate={o.Rate} seconds={o.Seconds} connections={o.Connections}");
        if (o.Label.Length > 0)
        {
            line.Append(CultureInfo.InvariantCulture, $" label={o.Label.Replace(' ', '_')}");
        }
        line.Append(CultureInfo.InvariantCulture, $" due={total} ok={completed} errors={errors} socket_errors={socketErrors} unfinished={(drained ? 0 : total - completed - errors - socketErrors)}");
        line.Append(CultureInfo.InvariantCulture, $" achieved_per_s={completed / elapsed:F0} schedule_s={scheduleSeconds:F3}");
        foreach (var (name, p) in new[] { ("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9) })
        {
            line.Append(CultureInfo.InvariantCulture, $" {name}_ms={latency.PercentileMs(p):F3}");
        }
        line.Append(CultureInfo.InvariantCulture, $" max_ms={latency.MaxMicros / 1000.0:F3}");
        Console.WriteLine(line.ToString());
        return drained && completed > 0 ? 0 : 1;
    }

    private readonly record struct Due(long Ticks, bool Measured);

    /// <summary>One keep-alive HTTP/1.1 connection: sends a request, reads its answer to the end, returns the status.</summary>
    private sealed class Connection : IDisposable
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private Socket _socket;
        private int _start;
        private int _end;

        private Connection(Socket socket) => _socket = socket;

        public static async Task<Connection> OpenAsync(IPEndPoint endpoint) => new(await ConnectAsync(endpoint));

        public async Task ReconnectAsync(IPEndPoint endpoint)
        {
            _socket.Dispose();
            _start = _end = 0;
            try
            {
                _socket = await ConnectAsync(endpoint);
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }

        public void Dispose() => _socket.Dispose();

        public async Task<int> ExchangeAsync(byte[] request, IPEndPoint endpoint)
        {
            if (!_socket.Connected)
            {
                await ReconnectAsync(endpoint);
            }
            await _socket.SendAsync(request, SocketFlags.None);
            int headerEnd = await ReadHeadersAsync();
            var (status, length, chunked, close) = ParseHeaders(_buffer.AsSpan(_start, headerEnd));
            _start += headerEnd + 4;
            if (chunked)
            {
                while (true)
                {
                    string sizeLine = await ReadLineAsync();
                    int semicolon = sizeLine.IndexOf(';', StringComparison.Ordinal);
                    long size = long.Parse(semicolon < 0 ? sizeLine : sizeLine[..semicolon], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    if (size == 0)
                    {
                        while ((await ReadLineAsync()).Length > 0)
                        {
                            // trailers
                        }
                        break;
                    }
                    await SkipAsync(size + 2);
                }
            }
            else
            {
                await SkipAsync(length ?? 0);
            }
            if (close)
            {
                await ReconnectAsync(endpoint);
            }
            return status;
        }

        private static async Task<Socket> ConnectAsync(IPEndPoint endpoint)
        {
            var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(endpoint);
            return socket;
        }

        private async Task FillAsync()
        {
            if (_start > 0 && _start == _end)
            {
                _start = _end = 0;
            }
            else if (_end == _buffer.Length)
            {
                if (_start == 0)
                {
                    throw new InvalidDataException("an HTTP header line is longer than the read buffer");
                }
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            int read = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None);
            if (read == 0)
            {
                throw new IOException("the server closed the connection");
            }
            _end += read;
        }

        /// <summary>Reads until the end of the answer's headers; returns their length from <c>_start</c> (without the blank line).</summary>
        private async Task<int> ReadHeadersAsync()
        {
            while (true)
            {
                int at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
                if (at >= 0)
                {
                    return at;
                }
                await FillAsync();
            }
        }

        /// <summary>Status, Content-Length, chunked and Connection: close, read from the header bytes without allocating.</summary>
        private static (int Status, long? Length, bool Chunked, bool Close) ParseHeaders(ReadOnlySpan<byte> headers)
        {
            if (headers.Length < 12 || !int.TryParse(headers.Slice(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out int status))
            {
                throw new InvalidDataException("not an HTTP/1.1 status line");
            }
            long? length = null;
            bool chunked = false, close = false;
            int lineEnd = headers.IndexOf("\r\n"u8);
            var rest = lineEnd < 0 ? [] : headers[(lineEnd + 2)..];
            while (!rest.IsEmpty)
            {
                lineEnd = rest.IndexOf("\r\n"u8);
                var line = lineEnd < 0 ? rest : rest[..lineEnd];
                rest = lineEnd < 0 ? [] : rest[(lineEnd + 2)..];
                int colon = line.IndexOf((byte)':');
                if (colon <= 0)
                {
                    continue;
                }
                var name = line[..colon];
                var value = line[(colon + 1)..].Trim((byte)' ');
                if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
                {
                    length = long.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
                {
                    chunked = value.IndexOf("chunked"u8) >= 0;
                }
                else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
                {
                    close = Ascii.EqualsIgnoreCase(value, "close"u8);
                }
            }
            return (status, length, chunked, close);
        }

        private async Task<string> ReadLineAsync()
        {
            while (true)
            {
                int at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
                if (at >= 0)
                {
                    string line = Encoding.ASCII.GetString(_buffer, _start, at);
                    _start += at + 2;
                    return line;
                }
                await FillAsync();
            }
        }

        private async Task SkipAsync(long count)
        {
            while (count > 0)
            {
                if (_start == _end)
                {
                    await FillAsync();
                }
                int take = (int)Math.Min(count, _end - _start);
                _start += take;
                count -= take;
            }
        }
    }
}
