namespace Gateway.Log;

/// <summary>
/// The appends waiting for one commit, released together by one thread-pool work item per core. A task completion
/// source that runs its continuations asynchronously queues a work item per waiter, and on a busy core each can wake
/// a sleeping pool thread: a commit round of 30 durable produce requests cost ~1 context switch per request more than
/// acknowledging from memory. Here the waiters of a part resume one after another on the work item that releases
/// it (each runs until its request next waits, typically its response written), while one part per core keeps them
/// spread over the cores. A/B against one work item per waiter, 1 KB acks=disk produce on one core (bench/README.md).
/// </summary>
internal sealed class CommitWaiters
{
    private static readonly int Parts = Math.Clamp(Environment.ProcessorCount, 1, 16);

    // Continuations run synchronously, but only ever on the work items that Release queues: never on the thread
    // that completes the commit, which may hold the partition's locks.
    private readonly TaskCompletionSource[] _parts = CreateParts();

    /// <summary>Completes when the commit is released; the part is chosen by the waiting thread.</summary>
    public Task Task => _parts[(uint)Environment.CurrentManagedThreadId % (uint)_parts.Length].Task;

    /// <summary>Resumes every waiter (with <paramref name="failure"/> thrown, if given), from the thread pool.</summary>
    public void Release(Exception? failure = null)
    {
        foreach (var part in _parts)
        {
            ThreadPool.UnsafeQueueUserWorkItem(
                static state =>
                {
                    if (state.Failure is null)
                    {
                        state.Part.TrySetResult();
                    }
                    else
                    {
                        state.Part.TrySetException(state.Failure);
                    }
                },
                (Part: part, Failure: failure),
                preferLocal: false);
        }
    }

    private static TaskCompletionSource[] CreateParts()
    {
        var parts = new TaskCompletionSource[Parts];
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = new TaskCompletionSource();
        }
        return parts;
    }
}
