using System.Globalization;
using System.Net;

namespace Gateway.Bench.SseLoad;

/// <summary>Command line of one run. Every figure is bounded, and only loopback (127.0.0.0/8) targets are accepted.</summary>
internal sealed class Options
{
    public const string Usage = """
        SseLoad latency|fanout|idle --url http://127.0.0.1:PORT [options]
        SseLoad http --url http://127.0.0.1:PORT --path /P --rate R [--body-file F --content-type T] [--connections C]

          --target gateway|baseline  gateway: GET /v1/topics/{topic}/events?from=latest, POST /v1/topics/{topic}/records?acks=memory
                                     baseline: GET /events, POST /publish                                   (default gateway)
          --topic NAME               gateway topic                                                          (default sse)
          --subscribers N            SSE connections          (default: latency 1, fanout 1000, idle 10000; max 100000)
          --rate R                   records per second, open loop (default: latency 1000, fanout 100; max 1000000)
          --seconds S                produce for S seconds (latency, fanout) / hold the connections S seconds (idle) (default 10)
          --drain S                  after producing, wait at most S seconds for every subscriber to catch up (default 5)
          --value-bytes B            length of each record value, >= 48                                     (default 100)
          --pid P                    the server's process: RSS (VmRSS) and CPU time from /proc/P (required for idle)
          --sources K                spread subscriber connections over K source addresses 127.0.0.1..K (default 1)
          --connect-concurrency C    subscriber connections opened at a time                                (default 64)
          --connect-timeout S        give up opening the subscribers after S seconds                        (default 120)
          --max-inflight N           produce requests in flight at most (beyond that the producer waits)    (default 1000)
          --label TEXT               copied to the result line

        http (open-loop latency of one request, any server): requests due at --rate per second for --seconds, sent
        over --connections keep-alive connections (default 64); a POST of --body-file with --content-type
        (default application/octet-stream) or, without a body file, a GET of --path. Latency counts from when each
        request was due. --warmup S (default 2) runs the same schedule first without counting it. --drain S bounds
        the wait for answers after the last request was due.

        Prints one line of key=value pairs on stdout (diagnostics go to stderr). Exit code 0 when the run completed.
        """;

    public required string Mode { get; init; }
    public required Uri Url { get; init; }
    public string Target { get; init; } = "gateway";
    public string Topic { get; init; } = "sse";
    public int Subscribers { get; init; }
    public double Rate { get; init; }
    public double Seconds { get; init; } = 10;
    public double Drain { get; init; } = 5;
    public int ValueBytes { get; init; } = 100;
    public int? Pid { get; init; }
    public int Sources { get; init; } = 1;
    public int ConnectConcurrency { get; init; } = 64;
    public double ConnectTimeout { get; init; } = 120;
    public int MaxInflight { get; init; } = 1000;
    public string Label { get; init; } = "";
    public string Path { get; init; } = "/";
    public string? BodyFile { get; init; }
    public string ContentType { get; init; } = "application/octet-stream";
    public int Connections { get; init; } = 64;
    public double Warmup { get; init; } = 2;

    public bool IsGateway => Target == "gateway";

    public static Options Parse(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("latency" or "fanout" or "idle" or "http"))
        {
            throw new ArgumentException("the first argument is the mode: latency, fanout, idle or http");
        }
        string mode = args[0];
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 1; i < args.Length; i++)
        {
            string key = args[i];
            if (!key.StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"expected --option value, got '{key}'");
            }
            values[key[2..]] = args[++i];
        }
        string Take(string key, string fallback)
        {
            if (values.Remove(key, out string? value))
            {
                return value;
            }
            return fallback;
        }
        double Number(string key, double fallback, double min, double max)
        {
            string text = Take(key, fallback.ToString(CultureInfo.InvariantCulture));
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || double.IsNaN(n) || n < min || n > max)
            {
                throw new ArgumentException($"--{key} must be a number in {min}..{max} (got '{text}')");
            }
            return n;
        }

        string url = Take("url", "");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp)
        {
            throw new ArgumentException($"--url must be an http:// URL (got '{url}')");
        }
        if (!IPAddress.TryParse(uri.Host, out var address) || !IsLoopback(address))
        {
            throw new ArgumentException($"--url must name a 127.0.0.0/8 address (got '{uri.Host}')");
        }
        string target = Take("target", "gateway");
        if (target is not ("gateway" or "baseline"))
        {
            throw new ArgumentException("--target is gateway or baseline");
        }
        string topic = Take("topic", "sse");
        if (topic.Length is 0 or > 249 || !topic.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            throw new ArgumentException("--topic is 1-249 characters of [a-zA-Z0-9._-]");
        }
        string? pidText = values.ContainsKey("pid") ? Take("pid", "") : null;
        int? pid = null;
        if (pidText is not null)
        {
            if (!int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p <= 0 || !Directory.Exists($"/proc/{p}"))
            {
                throw new ArgumentException($"--pid must be a running process (got '{pidText}')");
            }
            pid = p;
        }
        if (mode == "idle" && pid is null)
        {
            throw new ArgumentException("idle needs --pid (the server process)");
        }
        var options = new Options
        {
            Mode = mode,
            Url = new Uri(uri.GetLeftPart(UriPartial.Authority)),
            Target = target,
            Topic = topic,
            Subscribers = (int)Number("subscribers", mode switch { "latency" => 1, "fanout" => 1000, _ => 10_000 }, mode == "idle" ? 1 : 0, 100_000),
            Rate = Number("rate", mode == "latency" ? 1000 : 100, 0.1, 1_000_000),
            Seconds = Number("seconds", 10, 0.5, 3600),
            Drain = Number("drain", 5, 0, 600),
            ValueBytes = (int)Number("value-bytes", 100, 48, 1_000_000),
            Pid = pid,
            Sources = (int)Number("sources", 1, 1, 250),
            ConnectConcurrency = (int)Number("connect-concurrency", 64, 1, 10_000),
            ConnectTimeout = Number("connect-timeout", 120, 1, 3600),
            MaxInflight = (int)Number("max-inflight", 1000, 1, 100_000),
            Label = Take("label", ""),
            Path = Take("path", "/"),
            BodyFile = values.ContainsKey("body-file") ? Take("body-file", "") : null,
            ContentType = Take("content-type", "application/octet-stream"),
            Connections = (int)Number("connections", 64, 1, 10_000),
            Warmup = Number("warmup", 2, 0, 600),
        };
        if (!options.Path.StartsWith('/') || options.Path.Any(c => c is < '!' or > '~'))
        {
            throw new ArgumentException("--path is an absolute path with query, printable ASCII without spaces");
        }
        if (options.BodyFile is { } file && !File.Exists(file))
        {
            throw new ArgumentException($"--body-file {file} does not exist");
        }
        if (values.Count > 0)
        {
            throw new ArgumentException($"unknown option --{values.Keys.First()}");
        }
        if (options.Rate * options.Seconds > 100_000_000)
        {
            throw new ArgumentException("rate x seconds is at most 100,000,000 records");
        }
        return options;
    }

    private static bool IsLoopback(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        return address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && address.GetAddressBytes()[0] == 127;
    }
}
