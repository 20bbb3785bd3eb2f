using System.Collections.Concurrent;

namespace Gateway.Log.Device;

/// <summary>
/// A thread of its own for blocking file operations, in the order they were posted. It starts with the first
/// operation and ends after an idle timeout without one, so an idle partition holds no thread.
/// Why blocking reads are not left on the thread pool: see <see cref="SegmentFileDevice"/>.
/// </summary>
internal sealed class IoThread<T>(string name, Action<T> run, TimeSpan idleTimeout)
{
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(10);

    private readonly ConcurrentQueue<T> _queue = new();
    private readonly object _gate = new(); // Monitor.Wait/Pulse need an object, not a Lock
    private int _running;
    private int _pending;
    private volatile bool _closing;

    /// <summary>True while operations are queued or running.</summary>
    public bool Busy => Volatile.Read(ref _pending) > 0;

    /// <summary>True while the thread exists (busy, or idle within the timeout).</summary>
    public bool Running => Volatile.Read(ref _running) == 1;

    public void Post(T operation)
    {
        Interlocked.Increment(ref _pending);
        _queue.Enqueue(operation);
        if (Interlocked.CompareExchange(ref _running, 1, 0) == 0)
        {
            new Thread(Loop) { IsBackground = true, Name = name }.Start();
        }
        else
        {
            lock (_gate)
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    /// <summary>Ends the thread once the queue is empty, without waiting for the idle timeout.</summary>
    public void Close()
    {
        _closing = true;
        lock (_gate)
        {
            Monitor.Pulse(_gate);
        }
    }

    private void Loop()
    {
        while (true)
        {
            while (_queue.TryDequeue(out var operation))
            {
                run(operation);
                Interlocked.Decrement(ref _pending);
            }
            lock (_gate)
            {
                // Checked under the lock a poster pulses under: an operation queued after this look wakes the wait.
                if (!_queue.IsEmpty || (!_closing && Monitor.Wait(_gate, idleTimeout)))
                {
                    continue;
                }
            }
            // Idle: end, unless an operation was queued after the last look and no other thread was started for it.
            Volatile.Write(ref _running, 0);
            if (_queue.IsEmpty || Interlocked.CompareExchange(ref _running, 1, 0) != 0)
            {
                return;
            }
        }
    }
}
