using System.Diagnostics;
using Gateway.Chaos;

// Chaos harness (bench/chaos/README.md): kill -9 cycles, the Jepsen-style check, then the corruption scenarios.
if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(Options.Usage);
    return 0;
}
Options options;
try
{
    options = Options.Parse(args);
    if (options.Scenarios?.Except(Corruption.ScenarioNames).FirstOrDefault() is { } unknown)
    {
        throw new ArgumentException($"--scenarios: no scenario '{unknown}' (there are: {string.Join(", ", Corruption.ScenarioNames)})");
    }
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"Chaos: {ex.Message}");
    Console.Error.WriteLine(Options.Usage);
    return 2;
}

Directory.CreateDirectory(options.WorkDirectory);
Console.Error.WriteLine($"[chaos] seed {options.Seed}; {options.Cycles} cycles x {options.SecondsPerCycle} s, {options.Workload.Producers} producers over {options.Workload.Protocol}; work directory {options.WorkDirectory}");
var wall = Stopwatch.StartNew();
using var log = new ServerLog(options.ServerLog);

var run = new ChaosRun(options, log);
string? runFailure = null;
try
{
    await run.RunAsync();
}
catch (ChaosFailure ex)
{
    runFailure = ex.Message;
    Console.Error.WriteLine($"[chaos] kill cycles aborted: {ex.Message}");
}

var cycleWarnings = log.TakeWarnings();

Corruption? corruption = null;
string? corruptionFailure = null;
if (options.Corruption)
{
    corruption = new Corruption(options, log);
    try
    {
        await corruption.RunAsync();
    }
    catch (ChaosFailure ex)
    {
        corruptionFailure = ex.Message;
        Console.Error.WriteLine($"[chaos] corruption phase aborted: {ex.Message}");
    }
}

bool safe = runFailure is null && corruptionFailure is null && run.Check is { Safe: true } && (corruption is null || corruption.Failed == 0);
var corruptionWarnings = log.TakeWarnings();
string report = Report.Write(options, run, runFailure, corruption, corruptionFailure, (cycleWarnings, corruptionWarnings), wall.Elapsed, safe);
Console.WriteLine(report);
if (options.Out is { } path)
{
    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
    await File.WriteAllTextAsync(path, report);
    Console.Error.WriteLine($"[chaos] report written to {path}; server output in {options.ServerLog}");
}
return safe ? 0 : 1;
