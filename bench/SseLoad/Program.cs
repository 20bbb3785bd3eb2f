using Gateway.Bench.SseLoad;

// Load generator for what wrk cannot do (bench/sse.sh, bench/run.sh, bench/README.md): SSE latency, fan-out and idle
// connections, and open-loop HTTP latency. One run per process, one result line.
Options options;
try
{
    options = Options.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"SseLoad: {ex.Message}");
    Console.Error.WriteLine(Options.Usage);
    return 2;
}
return options.Mode switch
{
    "idle" => await Runs.IdleAsync(options),
    "http" => await OpenLoop.RunAsync(options),
    _ => await Runs.StreamAsync(options),
};
