using Microsoft.Extensions.Options;

namespace Gateway.Server.Streaming;

/// <summary>
/// One timer for every stream: idle streams wait on <see cref="NextTick"/> to send their keep-alive, so ten
/// thousand idle subscribers cost one timer, not ten thousand. Streams are spread over <see cref="Phases"/>
/// phases of the period and the timer wakes one phase at a time: every stream still hears one tick per period, but
/// a tick wakes only a slice of them, so the write buffers their keep-alives borrow from Kestrel's pool are a slice
/// too: woken all at once, every idle stream held a pooled block at the same moment, which showed in the memory each
/// subscriber costs (figures: docs/storage.md).
/// </summary>
public sealed class KeepAliveTicker : IDisposable
{
    public const int Phases = 32;

    private readonly ITimer _timer;
    private readonly TaskCompletionSource[] _ticks = new TaskCompletionSource[Phases];
    private int _next;
    private int _assigned;

    public KeepAliveTicker(IOptions<StreamingOptions> options, TimeProvider time)
    {
        for (int i = 0; i < Phases; i++)
        {
            _ticks[i] = NewTick();
        }
        var slice = TimeSpan.FromSeconds(options.Value.KeepAliveSeconds) / Phases;
        _timer = time.CreateTimer(_ => Tick(), null, slice, slice);
    }

    /// <summary>A phase for a new stream (round robin).</summary>
    public int AssignPhase() => (int)((uint)Interlocked.Increment(ref _assigned) % Phases);

    /// <summary>Completes at the next tick of <paramref name="phase"/>: within one keep-alive period.</summary>
    public Task NextTick(int phase) => Volatile.Read(ref _ticks[phase]).Task;

    public void Dispose() => _timer.Dispose();

    // Continuations run on the timer's thread, one stream after another: a keep-alive is a small write that does not
    // wait. Queued to the pool one by one instead, a tick's slice of streams arrives as a burst of work items and,
    // below the raised minimum (ILogStorage), each makes the pool start a thread, and every thread started costs
    // memory and scheduling for as long as it lives (figures: docs/storage.md).
    private static TaskCompletionSource NewTick() => new();

    private void Tick()
    {
        int phase = (int)((uint)Interlocked.Increment(ref _next) % Phases);
        Interlocked.Exchange(ref _ticks[phase], NewTick()).TrySetResult();
    }
}
