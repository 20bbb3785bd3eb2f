using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Gateway.Log;

/// <summary>
/// Group commit for every partition of the store, from one loop. A commit covers all that was appended while the
/// previous one ran, so concurrent <see cref="Acks.Disk"/> producers share one flush. Appends acknowledged from
/// memory are committed (and so made visible) within the flush interval.
/// </summary>
internal sealed partial class CommitScheduler : IAsyncDisposable
{
    private readonly ConcurrentQueue<PartitionLog> _dirty = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly SemaphoreSlim _urgentWake = new(0);
    private readonly TimeSpan _flushInterval;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _urgent;

    public CommitScheduler(TimeSpan flushInterval, ILogger logger)
    {
        _flushInterval = flushInterval;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Told how long each commit round took (all partitions' writes and fsyncs, shared by every waiting producer).</summary>
    public Action<TimeSpan>? RoundObserver { get; set; }

    /// <summary>Asks for a commit of the partition: at once when a producer waits for it, else within the flush interval.</summary>
    public void Schedule(PartitionLog partition, bool urgent)
    {
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
        var round = new List<Task>();
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
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            while (_dirty.TryDequeue(out var partition))
            {
                round.Add(partition.CommitAsync());
            }
            try
            {
                await Task.WhenAll(round).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Each partition has already failed the appends its commit covered.
                LogRoundFailed(_logger, ex.Message);
            }
            if (round.Count > 0)
            {
                RoundObserver?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(start));
            }
            round.Clear();
        }
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "A commit round failed: {Reason}")]
    private static partial void LogRoundFailed(ILogger logger, string reason);
}
