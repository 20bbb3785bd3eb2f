using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;

namespace Gateway.Bench.SseLoad;

internal static class Runs
{
    private static readonly MediaTypeHeaderValue TextPlain = new("text/plain");
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    /// <summary>
    /// latency and fanout: open the subscribers, produce at a steady open-loop rate (each value carries its send time),
    /// wait for the subscribers to catch up (at most --drain), and report deliveries, losses and produce-to-event latency.
    /// </summary>
    public static async Task<int> StreamAsync(Options o)
    {
        long runId = Random.Shared.NextInt64(1, 1_000_000_000_000);
        var tally = new Tally(runId, o.Subscribers);
        using var subscriberClient = Clients.ForSubscribers(o.Sources);
        using var producer = Clients.ForProducer();
        using var stop = new CancellationTokenSource();
        var (subscribers, tasks, connectSeconds) = await OpenAsync(o, tally, subscriberClient, stop.Token);

        var produceUri = new Uri(o.Url, o.IsGateway ? $"/v1/topics/{o.Topic}/records?acks=memory" : "/publish");
        string padding = new('x', o.ValueBytes);
        long sent = 0, ok = 0, failed = 0, inflight = 0, throttled = 0;
        var late = new Histogram();
        var pending = new List<Task>();
        long cpuStart = o.Pid is int p0 ? ProcStats.CpuTicks(p0) : -1;
        long total = (long)Math.Round(o.Rate * o.Seconds);
        long startTicks = Stopwatch.GetTimestamp();
        double ticksPerRecord = Stopwatch.Frequency / o.Rate;
        var limit = TimeSpan.FromSeconds(o.Seconds + 30); // a hard stop even if the producer cannot keep up

        async Task SendOneAsync(long seq)
        {
            try
            {
                long now = Stopwatch.GetTimestamp();
                string value = $"{runId}.{seq}.{now}.";
                value += padding[..Math.Max(0, o.ValueBytes - value.Length)];
                byte[] body = o.IsGateway
                    ? Encoding.UTF8.GetBytes(value)
                    : Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                        $$"""{"topic":"{{o.Topic}}","partition":0,"offset":{{seq}},"timestamp":{{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}},"value":"{{value}}"}"""));
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = o.IsGateway ? TextPlain : Json;
                using var response = await producer.PostAsync(produceUri, content, CancellationToken.None);
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref ok);
                }
                else if (Interlocked.Increment(ref failed) <= 3)
                {
                    string text = await response.Content.ReadAsStringAsync(CancellationToken.None);
                    await Console.Error.WriteLineAsync($"produce: HTTP {(int)response.StatusCode} {text[..Math.Min(300, text.Length)]}");
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
            {
                if (Interlocked.Increment(ref failed) <= 3)
                {
                    await Console.Error.WriteLineAsync($"produce: {ex.GetType().Name}: {ex.Message}");
                }
            }
            finally
            {
                Interlocked.Decrement(ref inflight);
            }
        }

        if (tally.Connected > 0)
        {
            while (sent < total && Stopwatch.GetElapsedTime(startTicks) < limit)
            {
                long now = Stopwatch.GetTimestamp();
                long due = Math.Min(total, (long)((now - startTicks) / ticksPerRecord) + 1);
                while (sent < due)
                {
                    if (Interlocked.Read(ref inflight) >= o.MaxInflight)
                    {
                        throttled++;
                        break;
                    }
                    long scheduled = startTicks + (long)(sent * ticksPerRecord);
                    late.Record((long)((Stopwatch.GetTimestamp() - scheduled) * 1_000_000.0 / Stopwatch.Frequency));
                    Interlocked.Increment(ref inflight);
                    var task = SendOneAsync(sent++);
                    if (!task.IsCompleted)
                    {
                        pending.Add(task);
                    }
                    if (pending.Count > 4096)
                    {
                        pending.RemoveAll(t => t.IsCompleted);
                    }
                }
                await Task.Delay(1);
            }
        }
        double produceSeconds = Stopwatch.GetElapsedTime(startTicks).TotalSeconds;
        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { }, TaskScheduler.Default);

        // Drain: every subscriber still connected should reach the number of acknowledged records.
        long drainStart = Stopwatch.GetTimestamp();
        long acknowledged = Interlocked.Read(ref ok);
        while (Stopwatch.GetElapsedTime(drainStart).TotalSeconds < o.Drain
            && subscribers.Any(s => s.Connected && s.Error is null && s.Received < acknowledged))
        {
            await Task.Delay(5);
        }
        double drainSeconds = Stopwatch.GetElapsedTime(drainStart).TotalSeconds;
        long cpuEnd = o.Pid is int p1 ? ProcStats.CpuTicks(p1) : -1;
        double elapsed = Stopwatch.GetElapsedTime(startTicks).TotalSeconds;
        long rss = o.Pid is int p2 ? ProcStats.RssKb(p2) : -1;
        await stop.CancelAsync();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { }, TaskScheduler.Default);

        long received = subscribers.Sum(s => s.Received);
        long lost = subscribers.Sum(s => Math.Max(0, acknowledged - s.Received));
        long lastDelivery = subscribers.Max(s => s.LastDelivery);
        double window = Math.Max(produceSeconds, lastDelivery > startTicks ? (lastDelivery - startTicks) / (double)Stopwatch.Frequency : 0);
        var result = new Result(o)
        {
            { "connect_s", F(connectSeconds) },
            { "connected", I(tally.Connected) },
            { "connect_failed", I(tally.ConnectFailed) },
            { "sent", I(sent) },
            { "ok", I(acknowledged) },
            { "failed", I(Interlocked.Read(ref failed)) },
            { "throttled", I(throttled) },
            { "expected", I(acknowledged * o.Subscribers) },
            { "received", I(received) },
            { "lost", I(lost) },
            { "dup", I(subscribers.Sum(s => s.Duplicates)) },
            { "reordered", I(subscribers.Sum(s => s.Reordered)) },
            { "foreign", I(subscribers.Sum(s => s.Foreign)) },
            { "sub_errors", I(tally.Disconnected) },
            { "deliveries_per_s", F(window > 0 ? received / window : 0, 0) },
            { "p50_ms", F(tally.Latency.PercentileMs(50)) },
            { "p99_ms", F(tally.Latency.PercentileMs(99)) },
            { "p999_ms", F(tally.Latency.PercentileMs(99.9)) },
            { "max_ms", F(tally.Latency.MaxMicros / 1000.0) },
            { "late_p99_ms", F(late.PercentileMs(99)) },
            { "late_max_ms", F(late.MaxMicros / 1000.0) },
            { "produce_s", F(produceSeconds) },
            { "drain_s", F(drainSeconds) },
            { "server_cpu_pct", cpuStart >= 0 && cpuEnd >= 0 ? F((cpuEnd - cpuStart) / ProcStats.ClockTicksPerSecond / elapsed * 100, 1) : "nan" },
            { "server_rss_kb", I(rss) },
        };
        result.Print();
        return tally.Connected > 0 ? 0 : 1;
    }

    /// <summary>
    /// idle: the server's RSS before, N idle SSE connections, RSS once all are connected, then hold them --seconds
    /// and sample the server's CPU time over the hold; RSS again at its end.
    /// </summary>
    public static async Task<int> IdleAsync(Options o)
    {
        int pid = o.Pid!.Value;
        var tally = new Tally(0, o.Subscribers);
        using var client = Clients.ForSubscribers(o.Sources);
        using var stop = new CancellationTokenSource();
        long rssBefore = ProcStats.RssKb(pid);
        var (subscribers, tasks, connectSeconds) = await OpenAsync(o, tally, client, stop.Token);
        await Task.Delay(1000); // let the server finish what the connections started
        long rssConnected = ProcStats.RssKb(pid);
        long cpuStart = ProcStats.CpuTicks(pid);
        long holdStart = Stopwatch.GetTimestamp();
        await Task.Delay(TimeSpan.FromSeconds(o.Seconds));
        long cpuEnd = ProcStats.CpuTicks(pid);
        double hold = Stopwatch.GetElapsedTime(holdStart).TotalSeconds;
        long rssEnd = ProcStats.RssKb(pid);
        int open = subscribers.Count(s => s.Connected && s.Error is null);
        await stop.CancelAsync();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { }, TaskScheduler.Default);

        int connected = Math.Max(1, tally.Connected);
        var result = new Result(o)
        {
            { "connect_s", F(connectSeconds) },
            { "connected", I(tally.Connected) },
            { "connect_failed", I(tally.ConnectFailed) },
            { "open_at_end", I(open) },
            { "sub_errors", I(tally.Disconnected) },
            { "rss_before_kb", I(rssBefore) },
            { "rss_connected_kb", I(rssConnected) },
            { "rss_end_kb", I(rssEnd) },
            { "kb_per_sub", F((rssEnd - rssBefore) / (double)connected, 2) },
            { "kb_per_sub_connected", F((rssConnected - rssBefore) / (double)connected, 2) },
            { "hold_s", F(hold) },
            { "cpu_pct", cpuStart >= 0 && cpuEnd >= 0 ? F((cpuEnd - cpuStart) / ProcStats.ClockTicksPerSecond / hold * 100, 2) : "nan" },
        };
        result.Print();
        return tally.Connected > 0 ? 0 : 1;
    }

    /// <summary>Opens the subscribers, --connect-concurrency at a time, and waits (at most --connect-timeout) until all have connected or failed.</summary>
    private static async Task<(List<Subscriber> Subscribers, List<Task> Tasks, double Seconds)> OpenAsync(Options o, Tally tally, HttpClient client, CancellationToken stop)
    {
        var uri = new Uri(o.Url, o.IsGateway ? $"/v1/topics/{o.Topic}/events?from=latest" : "/events");
        var gate = new SemaphoreSlim(o.ConnectConcurrency);
        var subscribers = new List<Subscriber>(o.Subscribers);
        var tasks = new List<Task>(o.Subscribers);
        int bufferSize = o.Subscribers > 2000 ? 1024 : 8192;
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < o.Subscribers; i++)
        {
            var subscriber = new Subscriber(tally, bufferSize);
            subscribers.Add(subscriber);
            tasks.Add(subscriber.RunAsync(client, uri, gate, TimeSpan.FromSeconds(30), stop));
        }
        if (o.Subscribers > 0)
        {
            await tally.AllSettled.WaitAsync(TimeSpan.FromSeconds(o.ConnectTimeout), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (tally.Connected < o.Subscribers)
        {
            await Console.Error.WriteLineAsync($"connected {tally.Connected} of {o.Subscribers} subscribers ({tally.ConnectFailed} failed) in {seconds:F1} s");
        }
        return (subscribers, tasks, seconds);
    }

    private static string I(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string F(double value, int decimals = 3) =>
        double.IsNaN(value) || double.IsInfinity(value) ? "nan" : value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>One line of key=value pairs, in insertion order.</summary>
    private sealed class Result(Options o) : List<KeyValuePair<string, string>>
    {
        public void Add(string key, string value) => Add(new KeyValuePair<string, string>(key, value));

        public void Print()
        {
            var line = new StringBuilder();
            line.Append(CultureInfo.InvariantCulture, $"sse mode={o.Mode} target={o.Target} subs={o.Subscribers}");
            if (o.Mode != "idle")
            {
                line.Append(CultureInfo.InvariantCulture, $" rate={o.Rate} seconds={o.Seconds}");
            }
            if (o.Label.Length > 0)
            {
                line.Append(CultureInfo.InvariantCulture, $" label={o.Label.Replace(' ', '_')}");
            }
            foreach (var (key, value) in this)
            {
                line.Append(CultureInfo.InvariantCulture, $" {key}={value}");
            }
            Console.WriteLine(line.ToString());
        }
    }
}
