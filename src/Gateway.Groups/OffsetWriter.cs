using System.Collections.Concurrent;
using Gateway.Groups.Storage;
using LiteDB;

namespace Gateway.Groups;

/// <summary>
/// Group commit for the offset store: every change of committed offsets is queued (under the coordinator's lock,
/// so the queue holds them in the order they happened in memory) and one writer applies whatever has gathered in
/// one LiteDB transaction, then completes each change's task. Concurrent commits share a transaction instead of
/// each paying for one; a commit is answered only once its transaction is written.
/// </summary>
internal sealed class OffsetWriter : IDisposable
{
    private readonly LiteDatabase _database;
    private readonly ILiteCollection<OffsetRecord> _offsets;
    private readonly ConcurrentQueue<(Action<ILiteCollection<OffsetRecord>> Change, TaskCompletionSource Done)> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Task _loop;
    private readonly Lock _gate = new();
    private bool _stopping;
    private int _disposed;

    public OffsetWriter(LiteDatabase database, ILiteCollection<OffsetRecord> offsets)
    {
        _database = database;
        _offsets = offsets;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Queues a change; the task completes when it is written, or fails with the write's error.</summary>
    public Task Enqueue(Action<ILiteCollection<OffsetRecord>> change)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            // Under the gate: once Dispose has said stop, nothing joins the queue that the loop might not see.
            if (_stopping)
            {
                done.SetException(new ObjectDisposedException(nameof(OffsetWriter)));
                return done.Task;
            }
            _queue.Enqueue((change, done));
        }
        if (_signal.CurrentCount == 0)
        {
            _signal.Release();
        }
        return done.Task;
    }

    /// <summary>Writes what is queued, then stops.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        lock (_gate)
        {
            _stopping = true;
        }
        _signal.Release();
        _loop.GetAwaiter().GetResult();
        _signal.Dispose();
    }

    private async Task RunAsync()
    {
        var batch = new List<(Action<ILiteCollection<OffsetRecord>> Change, TaskCompletionSource Done)>();
        while (true)
        {
            await _signal.WaitAsync().ConfigureAwait(false);
            while (_queue.TryDequeue(out var item))
            {
                batch.Add(item);
            }
            if (batch.Count == 0)
            {
                if (Stopped())
                {
                    return;
                }
                continue;
            }
            Exception? failure = null;
            try
            {
                // Synchronous from BeginTrans to Commit: LiteDB binds a transaction to its thread.
                _database.BeginTrans();
                foreach (var (change, _) in batch)
                {
                    change(_offsets);
                }
                _database.Commit();
            }
            catch (Exception ex)
            {
                failure = ex;
                try
                {
                    _database.Rollback();
                }
                catch (LiteException)
                {
                }
            }
            foreach (var (_, done) in batch)
            {
                if (failure is null)
                {
                    done.SetResult();
                }
                else
                {
                    done.SetException(failure);
                }
            }
            batch.Clear();
            if (Stopped())
            {
                return;
            }
        }
    }

    /// <summary>Told to stop, and everything queued before that is written.</summary>
    private bool Stopped()
    {
        lock (_gate)
        {
            return _stopping && _queue.IsEmpty;
        }
    }
}
