using System.Globalization;

namespace Gateway.Chaos;

/// <summary>The command line of one chaos run; every figure is bounded.</summary>
internal sealed class Options
{
    public const string Usage = """
        Chaos --server-dll PATH --data DIR [options]

          --server-dll PATH        the Gateway.Server.dll to run (as: dotnet PATH --urls=... --Storage:DataDirectory=...)
          --data DIR               work directory, missing or empty; it holds gateway/ (the server's data),
                                   server.log and corruption/ (one copy of a small data set per scenario)
          --out FILE               also write the Markdown report here
          --cycles K               kill -9 cycles                                                 (default 50)
          --seconds-per-cycle S    load per cycle; the kill falls at a random moment inside it    (default 4)
          --workload FILE          the workload as JSON: protocol, topic, partitions, producers, maxRecords, acks,
                                   group (bench/chaos/workloads/); the options below override it
          --protocol http          what carries the workload (default http; the Kafka listener adds its own)
          --producers N            concurrent producers, half with Idempotency-Key               (default 16)
          --max-records R          largest multi-record request (half the requests carry 1)      (default 20)
          --partitions P           partitions of the topic                                        (default 4)
          --seed N                 seeds the kill moments and the workload                        (default: random, printed)
          --acks disk|memory       the producers' acks; memory is a self-test of the checker: a kill takes back
                                   acknowledgements not yet committed, and the run must then FAIL  (default disk)
          --no-corruption          skip the corruption scenarios after the kill cycles
          --scenarios A,B,...      run only these corruption scenarios (names as in the report; default all)
          --power-cut              cut the power instead of only killing: the server's data lives on powerfs (a file
                                   system that loses whatever was not synced); in each cycle the server is killed
                                   and the unsynced data dropped at once (every other cut also tears the last unsynced
                                   write of each file); implies --no-corruption. Needs root, /dev/fuse, fuse3 and
                                   python3-fusepy
          --powerfs PATH           powerfs.py, for --power-cut (bench/chaos/run.sh passes it)
          --ignore-sync WHAT       with --power-cut, break a sync on purpose to show the run catches it: 'dirs', or
                                   a pattern of file names ('data.log.*', 'commit.record', '*.tmp', 'groups*')
                                   whose syncs make nothing durable (repeatable)
          --server-arg ARG         one more argument for every server start, e.g. --server-arg --Storage:FlushIntervalMs=5
                                   (repeatable)

        Exit code: 0 when every safety figure is 0, 1 when one is not (or the run could not finish), 2 for bad options.
        """;

    public required string ServerDll { get; init; }
    public required string WorkDirectory { get; init; }
    public string? Out { get; init; }
    public int Cycles { get; init; } = 50;
    public double SecondsPerCycle { get; init; } = 4;
    /// <summary>What the run drives: the topic, the producers, the group member, and the protocol that carries them.</summary>
    public required Workload Workload { get; init; }
    public int Seed { get; init; }
    public bool Corruption { get; init; } = true;
    public IReadOnlySet<string>? Scenarios { get; init; }
    public IReadOnlyList<string> ServerArgs { get; init; } = [];

    public bool PowerCut { get; init; }

    public string? PowerFsScript { get; init; }

    public IReadOnlyList<string> IgnoreSync { get; init; } = [];

    /// <summary>The server's data: on powerfs's mount in the power-cut mode.</summary>
    public string DataDirectory => PowerCut ? Path.Combine(WorkDirectory, "powerfs", "gateway") : Path.Combine(WorkDirectory, "gateway");

    public string ServerLog => Path.Combine(WorkDirectory, "server.log");

    public static Options Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        bool corruption = true;
        bool powerCut = false;
        var serverArgs = new List<string>();
        var ignoreSync = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string key = args[i];
            if (key == "--no-corruption")
            {
                corruption = false;
                continue;
            }
            if (key == "--power-cut")
            {
                powerCut = true;
                corruption = false;
                continue;
            }
            if (key == "--server-arg" && i + 1 < args.Length)
            {
                serverArgs.Add(args[++i]);
                continue;
            }
            if (key == "--ignore-sync" && i + 1 < args.Length)
            {
                ignoreSync.Add(args[++i]);
                continue;
            }
            if (!key.StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"expected --option value, got '{key}'");
            }
            values[key[2..]] = args[++i];
        }
        string? Take(string key) => values.Remove(key, out string? value) ? value : null;
        double Number(string key, double fallback, double min, double max)
        {
            string? text = Take(key);
            if (text is null)
            {
                return fallback;
            }
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || double.IsNaN(n) || n < min || n > max)
            {
                throw new ArgumentException($"--{key} must be a number in {min}..{max} (got '{text}')");
            }
            return n;
        }

        string dll = Take("server-dll") ?? throw new ArgumentException("--server-dll is required");
        if (!File.Exists(dll))
        {
            throw new ArgumentException($"--server-dll: no such file '{dll}'");
        }
        string data = Take("data") ?? throw new ArgumentException("--data is required");
        if (Directory.Exists(data) && Directory.EnumerateFileSystemEntries(data).Any())
        {
            throw new ArgumentException($"--data must be missing or empty (got '{data}', which holds files)");
        }
        var baseline = Take("workload") is { } file ? Workload.Load(file) : new Workload();
        var workload = (baseline with
        {
            Protocol = Take("protocol") ?? baseline.Protocol,
            Acks = Take("acks") ?? baseline.Acks,
            Producers = (int)Number("producers", baseline.Producers, 2, 1024),
            MaxRecords = (int)Number("max-records", baseline.MaxRecords, 2, 1000),
            Partitions = (int)Number("partitions", baseline.Partitions, 1, 64),
        }).Validated();
        var options = new Options
        {
            ServerDll = Path.GetFullPath(dll),
            WorkDirectory = Path.GetFullPath(data),
            Out = Take("out") is { } o ? Path.GetFullPath(o) : null,
            Cycles = (int)Number("cycles", 50, 1, 10_000),
            SecondsPerCycle = Number("seconds-per-cycle", 4, 0.2, 3600),
            Workload = workload,
            Seed = (int)Number("seed", Random.Shared.Next(1, 1_000_000), 0, int.MaxValue),
            Corruption = corruption,
            ServerArgs = serverArgs,
            PowerCut = powerCut,
            IgnoreSync = ignoreSync,
            PowerFsScript = Take("powerfs") is { } script ? Path.GetFullPath(script) : null,
            Scenarios = Take("scenarios") is { } names ? names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal) : null,
        };
        if (options.IgnoreSync.Count > 0 && !options.PowerCut)
        {
            throw new ArgumentException("--ignore-sync needs --power-cut");
        }
        if (options.PowerCut && options.PowerFsScript is null)
        {
            throw new ArgumentException("--power-cut needs --powerfs PATH (bench/chaos/run.sh passes it)");
        }
        if (values.Count > 0)
        {
            throw new ArgumentException($"unknown option --{values.Keys.First()}");
        }
        return options;
    }
}
