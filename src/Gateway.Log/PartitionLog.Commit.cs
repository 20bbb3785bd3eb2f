using FASTER.core;
using Gateway.Storage;

namespace Gateway.Log;

// The partition's commits: grouped commit rounds, their publication to readers, and recovery checkpoints.
public sealed partial class PartitionLog
{
    /// <summary>
    /// Saves a recovery checkpoint at the last finished commit now (after any write under way), unless one is there.
    /// The largest timestamp is taken at this moment: later appends can only make it larger than the log below the
    /// commit holds, which leaves timestamp lookups correct (they start earlier), never wrong.
    /// </summary>
    private async Task CheckpointCommittedAsync()
    {
        await _checkpointWrite.ConfigureAwait(false);
        var committed = Volatile.Read(ref _committed);
        if (committed.Address > Volatile.Read(ref _checkpointAddress) && Failure is null && Interlocked.CompareExchange(ref _checkpointing, 1, 0) == 0)
        {
            long maxTimestamp;
            lock (_appendLock)
            {
                maxTimestamp = _maxTimestamp;
            }
            WriteCheckpoint(committed.Address, committed.Offset, maxTimestamp);
        }
    }

    /// <summary>
    /// Saves a recovery checkpoint for a finished commit: its address, its next offset, the largest timestamp below
    /// it and the Idempotency-Keys of the batches it covers. Called with <c>_checkpointing</c> taken; releases it.
    /// </summary>
    private void WriteCheckpoint(long address, long nextOffset, long maxTimestamp)
    {
        try
        {
            if (Failure is null)
            {
                new RecoveryCheckpoint(address, nextOffset, maxTimestamp, _idempotency.Snapshot(nextOffset), _producers.Snapshot(nextOffset)).Save(_directory);
                Volatile.Write(ref _checkpointAddress, address);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Only the next recovery gets longer.
            LogCheckpointFailed(_logger, Topic, Partition, ex.Message);
        }
        finally
        {
            Volatile.Write(ref _checkpointing, 0);
        }
    }

    /// <summary>
    /// Commits everything appended so far and then publishes it to readers. Called by the commit scheduler and on
    /// close. A commit may be issued while the one before it is still under way: FasterLog writes its data as soon as
    /// the earlier commit's data is written (while the earlier commit record is), and writes the commit records in
    /// order. Commits are published in the order they were issued, each only after the one before it.
    /// </summary>
    internal async Task CommitAsync(bool force = false)
    {
        Volatile.Write(ref _dirty, 0);
        if (!TryEnterOpen(out var use))
        {
            return; // at rest: everything appended was committed before the log closed
        }
        using (use)
        {
            await CommitOpenAsync(force).ConfigureAwait(false);
        }
    }

    private async Task CommitOpenAsync(bool force)
    {
        CommitWaiters completes;
        long offset;
        long maxTimestamp;
        ValueTask<(bool Success, long CommitTail, long CommitNum)> commit = default;
        bool issued = false;
        Task<bool> previous;
        TaskCompletionSource<bool> published;
        await _commitGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_closed || _log is null || Failure is not null)
            {
                return;
            }
            lock (_appendLock)
            {
                offset = _nextOffset;
                maxTimestamp = _maxTimestamp;
                completes = _pendingCommit;
                _pendingCommit = new CommitWaiters();
                if (offset != _issuedOffset || force)
                {
                    // Issued under the append lock so that the commit's tail and the cookie (our next offset) agree.
                    commit = _log.CommitStronglyAsync(BitConverter.GetBytes(offset));
                    issued = true;
                    _issuedOffset = offset;
                }
            }
            previous = _lastCommit;
            published = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _lastCommit = published.Task;
        }
        finally
        {
            _commitGate.Release();
        }
        bool succeeded = false;
        try
        {
            succeeded = await PublishAsync(issued, commit, previous, completes, offset, maxTimestamp).ConfigureAwait(false);
        }
        finally
        {
            published.SetResult(succeeded);
        }
    }

    /// <summary>
    /// Waits for a commit issued by <see cref="CommitAsync"/> (none when nothing was appended since the one before),
    /// then for the one before it to be published, then publishes it. False when it, or one before it, failed.
    /// </summary>
    private async Task<bool> PublishAsync(bool issued, ValueTask<(bool Success, long CommitTail, long CommitNum)> commit, Task<bool> previous, CommitWaiters completes, long offset, long maxTimestamp)
    {
        try
        {
            long tail = 0;
            bool success = false;
            if (issued)
            {
                (success, tail, _) = await commit.ConfigureAwait(false);
            }
            if (!await previous.ConfigureAwait(false))
            {
                // A commit before this one failed, and with it the partition: nothing after it is published.
                completes.Release(Failure ?? new StorageFailureException($"An earlier commit of {Topic}/{Partition} failed."));
                return false;
            }
            if (!issued)
            {
                // Nothing appended since the commit before, which covers whoever waits here.
                completes.Release();
                return true;
            }
            if (!success)
            {
                // Nothing new to commit: an earlier commit already covers the tail.
                tail = _log!.CommittedUntilAddress;
            }
            Volatile.Write(ref _committed, new CommitPoint(offset, tail));
            completes.Release();
            SignalCommitted();
            if (tail - Volatile.Read(ref _checkpointAddress) >= _options.RecoveryCheckpointBytes && !_closing
                && Interlocked.CompareExchange(ref _checkpointing, 1, 0) == 0)
            {
                _checkpointWrite = Task.Run(() => WriteCheckpoint(tail, offset, maxTimestamp));
            }
            return true;
        }
        catch (Exception ex) when (ex is FasterException or IOException or ObjectDisposedException)
        {
            await previous.ConfigureAwait(false);
            var failure = Failure ?? new StorageFailureException($"Commit of {Topic}/{Partition} failed: {ex.Message}", ex);
            Interlocked.CompareExchange(ref _failure, failure, null);
            completes.Release(failure);
            lock (_appendLock)
            {
                // Appends made while this commit ran wait on the next one, which will never come.
                _pendingCommit.Release(failure);
            }
            SignalCommitted();
            LogCommitFailed(_logger, Topic, Partition, ex.Message);
            return false;
        }
    }
}
