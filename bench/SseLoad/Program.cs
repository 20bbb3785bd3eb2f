using Gateway.Bench.SseLoad;

// Load generator for the SSE benchmarks (bench/sse.sh, bench/README.md). One run per process, one result line.
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
return options.Mode == "idle" ? await Runs.IdleAsync(options) : await Runs.StreamAsync(options);
