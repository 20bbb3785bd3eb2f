using System.Diagnostics;
using System.Globalization;
using FASTER.core;

// B4: how many 1 KB entries per second FasterLog itself takes on this machine, with the gateway's log settings:
// `memory` = enqueue only (a background commit every 2 ms, like Storage:FlushIntervalMs); `disk` = every writer
// waits for a commit that covers its entry, and one loop commits back to back (group commit, like acks=disk).
//   dotnet LogBaseline.dll <directory> <disk|memory> [seconds=5] [writers=64] [bytes=1024]
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: LogBaseline <directory> <disk|memory> [seconds] [writers] [bytes]");
    return 2;
}
string directory = args[0];
bool durable = args[1] == "disk";
int seconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 5;
int writers = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 64;
int size = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1024;

Directory.CreateDirectory(directory);
using var device = Devices.CreateLogDevice(Path.Combine(directory, "data.log"));
using var log = new FasterLog(new FasterLogSettings
{
    LogDevice = device,
    PageSizeBits = 22,
    MemorySizeBits = 24,
    SegmentSizeBits = 28,
    LogChecksum = LogChecksumType.PerEntry,
    FastCommitMode = false,
    LogCommitDir = Path.Combine(directory, "commits"),
});
byte[] payload = new byte[size];
Random.Shared.NextBytes(payload);
using var stop = new CancellationTokenSource();
long appended = 0;
long commits = 0;
using var pending = new SemaphoreSlim(0);

var committer = Task.Run(async () =>
{
    while (!stop.IsCancellationRequested)
    {
        if (durable)
        {
            // Like the gateway's scheduler: a commit as soon as something waits for one, covering all that came meanwhile.
            await pending.WaitAsync(stop.Token).ConfigureAwait(false);
            await log.CommitAsync(token: stop.Token).ConfigureAwait(false);
        }
        else
        {
            await Task.Delay(2).ConfigureAwait(false);
            log.Commit();
        }
        Interlocked.Increment(ref commits);
    }
});
var tasks = Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
{
    while (!stop.IsCancellationRequested)
    {
        long address = await log.EnqueueAsync(payload, stop.Token).ConfigureAwait(false);
        if (durable)
        {
            if (pending.CurrentCount == 0)
            {
                pending.Release();
            }
            await log.WaitForCommitAsync(address + 1, token: stop.Token).ConfigureAwait(false);
        }
        Interlocked.Increment(ref appended);
    }
})).ToList();

await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false); // warm-up
long start = Interlocked.Read(ref appended);
long commitStart = Interlocked.Read(ref commits);
var clock = Stopwatch.StartNew();
await Task.Delay(TimeSpan.FromSeconds(seconds)).ConfigureAwait(false);
long done = Interlocked.Read(ref appended) - start;
long rounds = Interlocked.Read(ref commits) - commitStart;
double elapsed = clock.Elapsed.TotalSeconds;
await stop.CancelAsync().ConfigureAwait(false);
try
{
    await Task.WhenAll(tasks.Append(committer)).ConfigureAwait(false);
}
catch (OperationCanceledException)
{
}
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{done / elapsed:F0} appends/s ({(durable ? "disk" : "memory")}, {writers} writers, {size} B), {rounds / elapsed:F0} commits/s"));
return 0;
