namespace Gateway.Log;

/// <summary>
/// The appends waiting for one commit, released together: one thread-pool work item for each part (one part per
/// core) that has waiters. A task completion source that runs its continuations asynchronously queues a work item per
/// waiter, and on a busy core each can wake a sleeping pool thread, a cost durable produce pays and acknowledging
/// from memory does not. Here the waiters of a part resume one after another on the work item that releases it (each
/// runs until its request next waits, typically with its response written), while the parts keep them spread over
/// the cores (figures: docs/storage.md).
/// </summary>
internal sealed class CommitWaiters
{
    private static readonly int Parts = Math.Clamp(Environment.ProcessorCount, 1, 16);
    private static readonly object Succeeded = new();

    // Created for the first waiter of a part, and only those parts get a work item (a commit of appends that were
    // all acknowledged from memory has none). Continuations run synchronously, but only ever on the work items that
    // Release queues: never on the thread that completes the commit, which may hold the partition's locks.
    private readonly TaskCompletionSource?[] _parts = new TaskCompletionSource?[Parts];
    private readonly int[] _waiting = new int[Parts];
    private object? _outcome; // null until released, then Succeeded or the failure

    /// <summary>Completes when the commit is released; the part is chosen by the waiting thread.</summary>
    public Task Task
    {
        get
        {
            int part = (int)((uint)Environment.CurrentManagedThreadId % (uint)Parts);
            if (Volatile.Read(ref _parts[part]) is null)
            {
                Interlocked.CompareExchange(ref _parts[part], new TaskCompletionSource(), null);
            }
            var waiters = _parts[part]!;
            if (Interlocked.Exchange(ref _waiting[part], 1) == 0 && Volatile.Read(ref _outcome) is not null)
            {
                // Released already, possibly before this part had a waiter to release.
                Resume(part);
            }
            return waiters.Task;
        }
    }

    /// <summary>
    /// Resumes every waiter (with <paramref name="failure"/> thrown, if given), from the thread pool. The first
    /// release counts; a later one changes nothing.
    /// </summary>
    public void Release(Exception? failure = null)
    {
        if (Interlocked.CompareExchange(ref _outcome, failure ?? Succeeded, null) is not null)
        {
            return;
        }
        for (int part = 0; part < Parts; part++)
        {
            if (Volatile.Read(ref _waiting[part]) != 0)
            {
                Resume(part);
            }
        }
    }

    private void Resume(int part) => ThreadPool.UnsafeQueueUserWorkItem(
        static state =>
        {
            var waiters = Volatile.Read(ref state.Waiters._parts[state.Part])!;
            if (Volatile.Read(ref state.Waiters._outcome) is Exception failure)
            {
                waiters.TrySetException(failure);
            }
            else
            {
                waiters.TrySetResult();
            }
        },
        (Waiters: this, Part: part),
        preferLocal: false);
}
