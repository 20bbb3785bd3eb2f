namespace Gateway.Chaos;

/// <summary>
/// Open while the server is up and ready. Workers wait here before each request, so that nothing is sent while the
/// server is down (a request the kill cuts off fails on its own), and the harness closes it before each kill.
/// </summary>
internal sealed class ServerGate
{
    private readonly Lock _lock = new();
    private TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;

    /// <summary>Requests sent and not yet answered or failed.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    public void Open()
    {
        lock (_lock)
        {
            _open.TrySetResult();
        }
    }

    public void Close()
    {
        lock (_lock)
        {
            if (_open.Task.IsCompleted)
            {
                _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public Task WaitOpenAsync(CancellationToken cancellationToken)
    {
        Task open;
        lock (_lock)
        {
            open = _open.Task;
        }
        return open.WaitAsync(cancellationToken);
    }

    /// <summary>Counts one request in flight until the returned scope is disposed (after its answer is recorded).</summary>
    public InFlightScope Enter()
    {
        Interlocked.Increment(ref _inFlight);
        return new InFlightScope(this);
    }

    /// <summary>Waits until every request in flight has been answered or has failed (after a kill, at once).</summary>
    public async Task WaitIdleAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (InFlight > 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new ChaosFailure($"{InFlight} request(s) still in flight {timeout.TotalSeconds:0} s after the kill");
            }
            await Task.Delay(5);
        }
    }

    internal readonly struct InFlightScope(ServerGate gate) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref gate._inFlight);
    }
}
