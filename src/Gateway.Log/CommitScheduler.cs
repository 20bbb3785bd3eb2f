using System.Collections.Concurrent;
using Gateway.Log.Device;
using Gateway.Storage;
using Microsoft.Extensions.Logging;

namespace Gateway.Log;

/// <summary>
/// Group commit for every partition of the store, from one loop. A commit covers all that was appended while the
/// previous one ran, so concurrent <see cref="Acks.Disk"/> producers share one flush. Appends acknowledged from
/// memory are committed (and so made visible) within the flush interval.
/// <para>
/// When few appends wait, the next round is issued while the one before it is still under way (never more than two
/// at once): its data is written while the earlier round writes its commit records, so an append made during a
/// round waits for its own round rather than for the rest of that one first, which shortens the time from produce to
/// event. When many wait, the next round waits for the one before it and so gathers more appends per flush: rounds
/// always issued beside each other gather fewer appends each, and every round is work for the core, so under load
/// they cost durable throughput (figures: docs/storage.md).
/// </para>
/// </summary>
internal sealed partial class CommitScheduler : IAsyncDisposable
{
    // Appends per round up to which the next round may be issued while this one is under way.
    private const int OverlapLimit = 4;
    private readonly ConcurrentQueue<PartitionLog> _dirty = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly SemaphoreSlim _urgentWake = new(0);
    private readonly TimeSpan _flushInterval;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _urgent;
    private int _appends; // Schedule calls since the last round was issued

    public CommitScheduler(TimeSpan flushInterval, ILogger logger)
    {
        _flushInterval = flushInterval;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The store's write journal, told how many partitions each round commits (null without one).</summary>
    public WriteJournal? Journal { get; set; }

    /// <summary>Told how long each commit round took (all partitions' writes and fsyncs, shared by every waiting producer).</summary>
    public Action<TimeSpan>? RoundObserver { get; set; }

    /// <summary>Asks for a commit of the partition: at once when a producer waits for it, else within the flush interval.</summary>
    public void Schedule(PartitionLog partition, bool urgent)
    {
        Interlocked.Increment(ref _appends);
        if (partition.TryMarkDirty())
        {
            _dirty.Enqueue(partition);
        }
        if (urgent)
        {
            Volatile.Write(ref _urgent, 1);
            if (_urgentWake.CurrentCount == 0)
            {
                _urgentWake.Release();
            }
        }
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
        _wake.Dispose();
        _urgentWake.Dispose();
    }

    private async Task RunAsync()
    {
        // The round under way, which the next one may overlap.
        Task inFlight = Task.CompletedTask;
        while (!_stop.IsCancellationRequested)
        {
            await _wake.WaitAsync(_stop.Token).ConfigureAwait(false);
            if (Volatile.Read(ref _urgent) == 0)
            {
                // Only memory-acknowledged appends are waiting: let more gather, unless a durable one arrives.
                await _urgentWake.WaitAsync(_flushInterval, _stop.Token).ConfigureAwait(false);
            }
            Volatile.Write(ref _urgent, 0);
            while (_urgentWake.CurrentCount > 0 && _urgentWake.Wait(0))
            {
            }
            var round = new List<Task>();
            while (_dirty.TryDequeue(out var partition))
            {
                round.Add(partition.CommitAsync());
            }
            if (round.Count > 0)
            {
                Journal?.ObserveRound(round.Count);
            }
            var issued = round.Count > 0 ? FinishAsync(round, System.Diagnostics.Stopwatch.GetTimestamp()) : Task.CompletedTask;
            await inFlight.ConfigureAwait(false);
            inFlight = issued;
            if (Interlocked.Exchange(ref _appends, 0) > OverlapLimit)
            {
                // Busy: the next round waits for this one, and gathers more appends per flush than one issued beside it.
                await inFlight.ConfigureAwait(false);
            }
        }
        await inFlight.ConfigureAwait(false);
    }

    private async Task FinishAsync(List<Task> round, long start)
    {
        try
        {
            await Task.WhenAll(round).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Each partition has already failed the appends its commit covered.
            LogRoundFailed(_logger, ex.Message);
        }
        RoundObserver?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(start));
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "A commit round failed: {Reason}")]
    private static partial void LogRoundFailed(ILogger logger, string reason);
}
