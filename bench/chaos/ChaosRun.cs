using System.Diagnostics;
using System.Globalization;

namespace Gateway.Chaos;

/// <summary>
/// The kill cycles: the server under load from the producers and the group member; in each cycle, at a random moment,
/// SIGKILL, restart on the same data and port, check the group's committed offsets, go on. Then a graceful stop and
/// restart, the whole topic read back, and the check.
/// </summary>
internal sealed class ChaosRun(Options options, ServerLog log)
{
    private static readonly TimeSpan s_readyTimeout = TimeSpan.FromSeconds(60);

    public List<CycleResult> Cycles { get; } = [];

    public List<Producer> Producers { get; } = [];

    public GroupConsumer? Consumer { get; private set; }

    public Checker.CheckResult? Check { get; private set; }

    public TimeSpan FirstStart { get; private set; }

    public TimeSpan GracefulStop { get; private set; }

    public TimeSpan GracefulRestart { get; private set; }

    public TimeSpan CyclesTime { get; private set; }

    public long LogRecords { get; private set; }

    /// <summary>powerfs's counters at the end of the power-cut mode (syncs, writes lost, O_DIRECT opens refused, ...).</summary>
    public Dictionary<string, long>? PowerFsCounters { get; private set; }

    public async Task RunAsync()
    {
        using var powerFs = options.PowerCut ? await PowerFs.MountAsync(options.PowerFsScript!, options.WorkDirectory, options.Seed, options.IgnoreSync) : null;
        Directory.CreateDirectory(options.DataDirectory);
        int port = GatewayProcess.FreePort();
        var address = new Uri($"http://127.0.0.1:{port}");
        var gate = new ServerGate();
        var workload = options.Workload;
        using var client = workload.Connect(address);
        using var stop = new CancellationTokenSource();
        using var abort = new CancellationTokenSource();
        var workers = new List<Task>();

        log.Mark("start on an empty data directory");
        var server = GatewayProcess.Start(options, port, options.DataDirectory, log);
        try
        {
            FirstStart = await server.WaitReadyAsync(s_readyTimeout);
            await client.CreateTopicAsync();

            for (int i = 0; i < workload.Producers; i++)
            {
                Producers.Add(new Producer(i, idempotent: i % 2 == 0, client, gate, workload.MaxRecords, options.Seed + 1 + i));
            }
            Consumer = new GroupConsumer(client, gate, workload.Partitions);
            gate.Open();
            workers.AddRange(Producers.Select(p => Task.Run(() => p.RunAsync(stop.Token, abort.Token))));
            workers.Add(Task.Run(() => Consumer.RunAsync(stop.Token)));

            var random = new Random(options.Seed);
            var load = Stopwatch.StartNew();
            var cycleLength = TimeSpan.FromSeconds(options.SecondsPerCycle);
            long ackedBefore = 0;
            for (int cycle = 1; cycle <= options.Cycles; cycle++)
            {
                // The kill falls anywhere in the cycle's load time; what is left of it runs after the restart.
                var killAt = cycleLength * random.NextDouble();
                await Task.Delay(killAt);
                gate.Close();
                int inFlight = gate.InFlight;
                long acked = Producers.Sum(p => p.AckedRecords);
                server.Kill();
                // The power goes with the process: whatever it wrote and did not sync is gone, at the same instant
                // (the process is dead, so nothing it did can land in between). Every other cut tears the last
                // unsynced write of each file.
                bool torn = cycle % 2 == 0;
                if (powerFs is not null)
                {
                    await powerFs.CutAsync(torn);
                }
                server.Dispose();
                await gate.WaitIdleAsync(TimeSpan.FromSeconds(60));

                log.Mark(powerFs is null ? $"restart after kill {cycle}" : $"restart after power cut {cycle}{(torn ? " (torn)" : "")}");
                server = GatewayProcess.Start(options, port, options.DataDirectory, log);
                var ready = await server.WaitReadyAsync(s_readyTimeout);
                await Consumer.VerifyCommittedAsync($"after {(powerFs is null ? "kill" : "power cut")} {cycle}");
                gate.Open();
                Cycles.Add(new CycleResult(cycle, killAt, acked - ackedBefore, inFlight, ready));
                ackedBefore = acked;
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[chaos] cycle {cycle}/{options.Cycles}: {(powerFs is null ? "killed" : torn ? "power cut (torn)" : "power cut")} at {killAt.TotalSeconds:0.00} s with {inFlight} request(s) in flight; {acked:N0} records acknowledged so far; ready again in {ready.TotalMilliseconds:0} ms"));
                await Task.Delay(cycleLength - killAt);
            }
            CyclesTime = load.Elapsed;

            // Stop the load: every producer finishes the request it is on (the server is up, so retries settle).
            await stop.CancelAsync();
            var all = Task.WhenAll(workers);
            if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(90))) != all)
            {
                await abort.CancelAsync();
            }
            await all;
            await Consumer.VerifyCommittedAsync("after the load stopped");

            GracefulStop = await server.StopAsync(TimeSpan.FromSeconds(60));
            server.Dispose();
            log.Mark("restart after a graceful stop (SIGTERM)");
            server = GatewayProcess.Start(options, port, options.DataDirectory, log);
            GracefulRestart = await server.WaitReadyAsync(s_readyTimeout);
            await Consumer.VerifyCommittedAsync("after the graceful restart");

            Console.Error.WriteLine("[chaos] reading the whole topic back");
            var snapshot = await LogSnapshot.ReadAsync(client, workload.Partitions);
            LogRecords = snapshot.Records;
            Check = Checker.Check(snapshot, Producers, Consumer);
            await server.StopAsync(TimeSpan.FromSeconds(60));
            PowerFsCounters = powerFs is null ? null : await powerFs.CountersAsync();
        }
        finally
        {
            await abort.CancelAsync();
            await stop.CancelAsync();
            gate.Open();
            await Task.WhenAny(Task.WhenAll(workers), Task.Delay(TimeSpan.FromSeconds(30)));
            server.Dispose();
        }
    }

    /// <summary>One kill: when it fell in the cycle, records acknowledged since the previous kill, requests it cut off, restart-to-ready.</summary>
    internal sealed record CycleResult(int Cycle, TimeSpan KillAt, long AckedBeforeKill, int InFlightAtKill, TimeSpan RestartToReady);
}
