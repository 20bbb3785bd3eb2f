using System.Globalization;
using System.Text;

namespace Gateway.Chaos;

/// <summary>The Markdown report of a run: parameters, safety figures (each must be 0), workload, restarts, corruption.</summary>
internal static class Report
{
    public static string Write(Options options, ChaosRun run, string? runFailure, Corruption? corruption, string? corruptionFailure,
        (IReadOnlyList<(string Message, int Count)> Cycles, IReadOnlyList<(string Message, int Count)> Corruption) warnings, TimeSpan wall, bool safe)
    {
        var md = new StringBuilder();
        void Line(string text = "") => md.Append(text).Append('\n');
        string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
        string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture);

        Line(options.PowerCut
            ? "# Chaos run: power cuts under acks=disk produce (powerfs)"
            : "# Chaos run: kill -9 under acks=disk produce, then corrupted segments");
        Line();
        Line("| | |");
        Line("| --- | --- |");
        Line($"| result | **{(safe ? "PASS: every safety figure is 0" : "FAIL")}** |");
        Line($"| date | {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} CPUs |");
        Line($"| server | `{options.ServerDll}`{string.Concat(options.ServerArgs.Select(a => $" `{a}`"))} |");
        Line($"| seed | {options.Seed} (again with `--seed {options.Seed}`) |");
        Line(options.PowerCut
            ? $"| cycles | {options.Cycles} × {options.SecondsPerCycle.ToString(CultureInfo.InvariantCulture)} s of load, a power cut at a random moment in each (SIGKILL, and at once powerfs drops every write, truncate and directory entry not synced; every other cut also keeps a torn prefix, in whole 512-byte sectors, of each file's last unsynced write), restart on the same data and port |"
            : $"| cycles | {options.Cycles} × {options.SecondsPerCycle.ToString(CultureInfo.InvariantCulture)} s of load, SIGKILL at a random moment in each, restart on the same data and port |");
        if (options.IgnoreSync.Count > 0)
        {
            Line($"| **syncs broken on purpose** | powerfs ignores the syncs of: {string.Join(", ", options.IgnoreSync.Select(w => $"`{w}`"))} — this run is expected to FAIL |");
        }
        if (run.PowerFsCounters is { } counters)
        {
            Line($"| powerfs | {string.Join(", ", counters.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key} {N(c.Value)}"))}; direct_refused counts O_DIRECT opens, which powerfs refuses as FUSE file systems do (the server then takes its page-cache path with synchronous writes) |");
        }
        var workload = options.Workload;
        Line($"| protocol | {workload.Protocol} |");
        Line($"| producers | {workload.Producers}: {(workload.Producers + 1) / 2} with an idempotency key per request (retried with the same key after a kill), {workload.Producers / 2} without (not retried); one request at a time each, `acks={workload.Acks}`{(workload.Acks == "disk" ? "" : " (a self-test of the checker: expect losses)")}, half of the requests 1 record, half 2..{workload.MaxRecords}, half keyless, half keyed |");
        Line($"| consumer | one member of group `{workload.Group}`: long-poll fetch, commit what it fetched with the fetch's generation, join again when fenced |");
        Line($"| topic | `{workload.Topic}`, {workload.Partitions} partitions |");
        double loadSeconds = run.Cycles.Count * options.SecondsPerCycle;
        Line($"| wall time | {wall.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s: kill cycles {run.CyclesTime.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s ({loadSeconds.ToString("0", CultureInfo.InvariantCulture)} s of load, the rest restarts), then the check{(options.Corruption ? " and the corruption scenarios" : "")} |");
        if (runFailure is not null)
        {
            Line($"| **kill cycles aborted** | {runFailure} |");
        }
        if (corruptionFailure is not null)
        {
            Line($"| **corruption phase aborted** | {corruptionFailure} |");
        }
        Line();

        var check = run.Check;
        Line("## Safety figures (each must be 0)");
        Line();
        Line("| figure | count |");
        Line("| --- | ---: |");
        if (check is null)
        {
            Line("| (the log was not read back: the kill cycles did not finish) | - |");
        }
        else
        {
            foreach (var (name, items) in check.Safety)
            {
                Line($"| {name} | {N(items.Count)} |");
            }
            Line($"| idempotent requests never answered (retries gave up) | {N(check.Unresolved)} |");
        }
        if (corruption is not null)
        {
            Line($"| corruption scenarios not handled as documented | {corruption.Failed} of {corruption.Results.Count} |");
            Line($"| ... of which silently served a short or empty log, or appended over it | {corruption.SilentLosses} |");
        }
        if (check is not null)
        {
            foreach (var (name, items) in check.Safety.Where(s => s.Items.Count > 0))
            {
                Line();
                Line($"{name}, first {items.Examples.Count}:");
                foreach (string example in items.Examples)
                {
                    Line($"- {example}");
                }
            }
        }
        Line();

        Line("## Workload");
        Line();
        Line("| | |");
        Line("| --- | --- |");
        if (check is not null)
        {
            double rate = loadSeconds > 0 ? check.Acked / loadSeconds : 0;
            Line($"| acknowledged records | **{N(check.Acked)}** ({N(check.AckedIdempotent)} idempotent, {N(check.AckedPlain)} plain), {N((long)rate)}/s of load |");
            Line($"| indeterminate records (plain requests left unanswered by a kill) | {N(check.Indeterminate)}, of which {N(check.IndeterminateLanded)} landed |");
            Line($"| rejected records (4xx: never appended) | {N(check.Rejected)} |");
            Line($"| records in the log at the end | {N(run.LogRecords)} |");
        }
        var producers = run.Producers;
        Line($"| produce requests | {N(producers.Sum(p => p.Requests))}; idempotent retries {N(producers.Sum(p => p.Retries))}, answered `Idempotency-Replayed: true` {N(producers.Sum(p => p.Replays))} |");
        string errors = string.Join(", ", producers.SelectMany(p => p.Errors).GroupBy(e => e.Key).OrderByDescending(g => g.Sum(e => e.Value)).Select(g => $"{g.Key} × {N(g.Sum(e => e.Value))}"));
        Line($"| produce attempts without a 200 | {(errors.Length == 0 ? "none" : errors)} |");
        if (run.Consumer is { } consumer)
        {
            Line($"| consumer | {N(consumer.Fetches)} fetches, {N(consumer.RecordsFetched)} records fetched ({N(check?.ConsumedOffsets ?? 0)} distinct offsets), {N(consumer.CommitsAcknowledged)} commits acknowledged, {N(consumer.CommitsUnanswered)} left unanswered by a kill, {N(consumer.Joins)} joins, {N(consumer.DescribeChecks)} read-backs of the committed offsets |");
            string consumerErrors = string.Join(", ", consumer.Errors.OrderByDescending(e => e.Value).Select(e => $"{e.Key} × {N(e.Value)}"));
            Line($"| consumer answers without a 2xx | {(consumerErrors.Length == 0 ? "none" : consumerErrors)} |");
        }
        Line();

        Line("## Restarts");
        Line();
        var readies = run.Cycles.Select(c => c.RestartToReady.TotalMilliseconds).Order().ToList();
        Line("| | ms |");
        Line("| --- | ---: |");
        if (readies.Count > 0)
        {
            Line($"| restart-to-ready after {(options.PowerCut ? "a power cut" : "kill -9")} (process start → /health/ready 200), {readies.Count} restarts: min / median / p90 / max | {readies[0]:0} / {Percentile(readies, 0.5):0} / {Percentile(readies, 0.9):0} / {readies[^1]:0} |");
        }
        Line($"| first start (empty data directory) | {Ms(run.FirstStart)} |");
        Line($"| graceful stop (SIGTERM → exit) / start after it | {Ms(run.GracefulStop)} / {Ms(run.GracefulRestart)} |");
        Line();

        if (corruption is not null)
        {
            Line("## Corruption");
            Line();
            Line($"Each scenario damages partition 0 of a copy of the same data set (topic `damage`, 2 partitions, {N(corruption.RecordsPerPartition)} records in 300 acknowledged batches each, stopped gracefully: all of it committed), starts the server on it and probes it.");
            Line();
            Line("| scenario | damage | /health/ready | describe | fetch partition 0 | partition 1 | produce to 0 | verdict |");
            Line("| --- | --- | --- | --- | --- | --- | --- | --- |");
            foreach (var r in corruption.Results)
            {
                string fetch = $"{r.Served} served{(r.Wrong > 0 ? $", {r.Wrong} wrong" : "")}, then {r.FetchError ?? "end"}";
                string verdict = r.Ok ? $"ok: {r.Verdict}" : $"**NOT OK**: {string.Join("; ", r.Problems)}";
                verdict += string.Concat(r.Notes.Select(n => $"; note: {n}"));
                Line($"| {r.Name} | {r.Damage} | {r.Ready?.ToString(CultureInfo.InvariantCulture) ?? "-"} `{Trim(r.ReadyBody, 60)}` | {r.Describe} | {fetch} | {(r.OtherPartitionIntact ? "intact" : "NOT intact")} | {r.Produce} | {verdict} |");
            }
            Line();
            Line("What the server logged for each:");
            Line();
            foreach (var r in corruption.Results.Where(r => r.ServerSaid is not null))
            {
                Line($"- {r.Name}: `{Trim(r.ServerSaid!, 400)}`");
            }
            Line();
        }

        Line("## Server log, Warning and above (numbers folded to #)");
        Line();
        Line("During the kill cycles:");
        Line();
        Warnings(md, warnings.Cycles);
        if (corruption is not null)
        {
            Line("During the corruption scenarios (the damaged partitions' errors are expected here):");
            Line();
            Warnings(md, warnings.Corruption);
        }

        if (run.Cycles.Count > 0)
        {
            Line("<details><summary>Cycles</summary>");
            Line();
            Line("| cycle | kill at (s) | acknowledged since the previous kill | requests in flight at the kill | restart-to-ready (ms) |");
            Line("| ---: | ---: | ---: | ---: | ---: |");
            foreach (var c in run.Cycles)
            {
                Line($"| {c.Cycle} | {c.KillAt.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)} | {N(c.AckedBeforeKill)} | {c.InFlightAtKill} | {Ms(c.RestartToReady)} |");
            }
            Line();
            Line("</details>");
        }
        return md.ToString();
    }

    private static void Warnings(StringBuilder md, IReadOnlyList<(string Message, int Count)> warnings)
    {
        if (warnings.Count == 0)
        {
            md.Append("none\n");
        }
        foreach (var (message, count) in warnings.Take(15))
        {
            md.Append(CultureInfo.InvariantCulture, $"- {count} × `{Trim(message, 300)}`\n");
        }
        md.Append('\n');
    }

    private static double Percentile(List<double> sorted, double p) => sorted[(int)Math.Min(sorted.Count - 1, Math.Round(p * (sorted.Count - 1)))];

    private static string Trim(string text, int length) => (text.Length <= length ? text : text[..length] + "…").Replace("`", "'", StringComparison.Ordinal).Replace("|", "\\|", StringComparison.Ordinal);
}
