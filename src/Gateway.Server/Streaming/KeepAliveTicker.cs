using Microsoft.Extensions.Options;

namespace Gateway.Server.Streaming;

/// <summary>
/// One timer for every stream: idle streams wait on <see cref="NextTick"/> to send their keep-alive, so ten
/// thousand idle subscribers cost one timer, not ten thousand.
/// </summary>
public sealed class KeepAliveTicker : IDisposable
{
    private readonly ITimer _timer;
    private TaskCompletionSource _tick = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public KeepAliveTicker(IOptions<StreamingOptions> options, TimeProvider time)
    {
        var period = TimeSpan.FromSeconds(options.Value.KeepAliveSeconds);
        _timer = time.CreateTimer(_ => Interlocked.Exchange(ref _tick, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(), null, period, period);
    }

    /// <summary>Completes at the next tick.</summary>
    public Task NextTick => Volatile.Read(ref _tick).Task;

    public void Dispose() => _timer.Dispose();
}
