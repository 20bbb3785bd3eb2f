namespace Gateway.Server.Storage;

/// <summary>
/// A backend's opening, started once on the thread pool (by whichever comes first: the host's build, its start, or
/// a request), awaited by the host's start and by requests that arrive while it runs.
/// </summary>
internal sealed class OpenOnce(Func<Task> open)
{
    private readonly Lock _lock = new();
    private Task? _opening;

    /// <summary>The opening, started now unless it has been.</summary>
    public Task Opening()
    {
        lock (_lock)
        {
            return _opening ??= Task.Run(open);
        }
    }

    /// <summary>The opening if it was started, for a stop to wait out.</summary>
    public Task? Started
    {
        get
        {
            lock (_lock)
            {
                return _opening;
            }
        }
    }

    /// <summary>
    /// Waits for the opening, for a request that arrived while it was still running; a storage that could not be
    /// opened is a <see cref="Gateway.Storage.StorageFailureException"/> (503) saying <paramref name="what"/> failed.
    /// </summary>
    public async Task WhenOpenAsync(string what, CancellationToken cancellationToken)
    {
        try
        {
            await Opening().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new Gateway.Storage.StorageFailureException($"{what}: {ex.Message}", ex);
        }
    }
}
