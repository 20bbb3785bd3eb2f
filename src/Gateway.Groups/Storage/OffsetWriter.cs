using System.Threading.Channels;
using LiteDB;

namespace Gateway.Groups.Storage;

/// <summary>
/// Group commit for the offset store: every change of committed offsets is queued (under the coordinator's lock,
/// so the queue holds them in the order they happened in memory) and one writer applies whatever has gathered in
/// one LiteDB transaction, then completes the batch's one task. Concurrent commits share a transaction instead of
/// each paying for one, and commits of the same partition in a batch are one upsert of the last value (what the
/// store holds afterwards is the same); a commit is answered only once its transaction is written and synced
/// (<see cref="StoreSync"/>). The sync of one batch runs while the next batch gathers and is written, so a busy
/// store pays one sync for many transactions.
/// </summary>
internal sealed class OffsetWriter : IDisposable
{
    private readonly LiteDatabase _database;
    private readonly StoreSync _sync;
    private readonly ILiteCollection<OffsetRecord> _offsets;
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Task _loop;
    private readonly Channel<Batch> _written = Channel.CreateUnbounded<Batch>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly Task _syncLoop;
    private readonly Lock _gate = new();
    private Batch _next = new();
    private bool _stopping;
    private int _disposed;

    public OffsetWriter(LiteDatabase database, ILiteCollection<OffsetRecord> offsets, StoreSync sync)
    {
        _sync = sync;
        _database = database;
        _offsets = offsets;
        _loop = Task.Run(RunAsync);
        _syncLoop = Task.Run(SyncAsync);
    }

    /// <summary>Queues offsets to write; the task completes when they are written, or fails with the write's error.</summary>
    public Task Upsert(IReadOnlyList<OffsetRecord> records) => Enqueue(new Change(records, null));

    /// <summary>Queues another change (a deletion); the task completes when it is written, or fails with the write's error.</summary>
    public Task Apply(Action<ILiteCollection<OffsetRecord>> change) => Enqueue(new Change(null, change));

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
        _written.Writer.Complete();
        _syncLoop.GetAwaiter().GetResult();
        _signal.Dispose();
    }

    private Task Enqueue(Change change)
    {
        bool wake;
        Task written;
        lock (_gate)
        {
            // Under the gate: once Dispose has said stop, nothing joins a batch that the loop might not see.
            if (_stopping)
            {
                return Task.FromException(new ObjectDisposedException(nameof(OffsetWriter)));
            }
            wake = _next.Changes.Count == 0;
            _next.Changes.Add(change);
            written = _next.Written.Task;
        }
        if (wake)
        {
            _signal.Release();
        }
        return written;
    }

    private async Task RunAsync()
    {
        var latest = new Dictionary<string, OffsetRecord>(StringComparer.Ordinal);
        while (true)
        {
            await _signal.WaitAsync().ConfigureAwait(false);
            // To the back of the thread pool's queue once: requests already waiting there join this batch first.
            // Idle, that costs one hop; busy, it turns a transaction per few commits into one per many.
            await Task.Yield();
            Batch batch;
            bool stopping;
            lock (_gate)
            {
                batch = _next;
                _next = new Batch();
                stopping = _stopping;
            }
            if (batch.Changes.Count > 0)
            {
                Write(batch, latest);
            }
            if (stopping)
            {
                // Nothing joins after stop was said, so everything queued before it was in this batch.
                return;
            }
        }
    }

    private void Write(Batch batch, Dictionary<string, OffsetRecord> latest)
    {
        try
        {
            // Synchronous from BeginTrans to Commit: LiteDB binds a transaction to its thread.
            _database.BeginTrans();
            foreach (var change in batch.Changes)
            {
                if (change.Records is { } records)
                {
                    foreach (var record in records)
                    {
                        latest[record.Id] = record;
                    }
                }
                else
                {
                    // A deletion applies after the upserts queued before it, as they happened in memory.
                    UpsertLatest(latest);
                    change.Other!(_offsets);
                }
            }
            UpsertLatest(latest);
            _database.Commit();
            // Answered once durable. The sync runs beside the next transaction: it covers every batch written
            // before it starts, so while one sync is in flight the next batch gathers and is written.
            _written.Writer.TryWrite(batch);
        }
        catch (Exception ex)
        {
            latest.Clear();
            try
            {
                _database.Rollback();
            }
            catch (LiteException)
            {
            }
            batch.Written.SetException(ex);
        }
    }

    private async Task SyncAsync()
    {
        var written = new List<Batch>();
        while (await _written.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (_written.Reader.TryRead(out var batch))
            {
                written.Add(batch);
            }
            try
            {
                _sync.Committed();
                written.ForEach(b => b.Written.SetResult());
            }
            catch (IOException ex)
            {
                written.ForEach(b => b.Written.SetException(ex));
            }
            written.Clear();
        }
    }

    private void UpsertLatest(Dictionary<string, OffsetRecord> latest)
    {
        if (latest.Count > 0)
        {
            _offsets.Upsert(latest.Values);
            latest.Clear();
        }
    }

    private readonly record struct Change(IReadOnlyList<OffsetRecord>? Records, Action<ILiteCollection<OffsetRecord>>? Other);

    private sealed class Batch
    {
        public List<Change> Changes { get; } = [];

        public TaskCompletionSource Written { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
