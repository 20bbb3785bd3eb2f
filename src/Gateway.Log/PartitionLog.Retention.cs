using Gateway.Storage;

namespace Gateway.Log;

// The partition's retention: the oldest record, the retention policy's deletions, and deletions asked for by offset.
public sealed partial class PartitionLog
{
    /// <summary>Timestamp (epoch ms) of the record at the begin offset, or null when the partition is empty.</summary>
    public long? OldestTimestamp()
    {
        long begin = BeginOffset;
        if (begin >= EndOffset || Failure is not null)
        {
            return null;
        }
        if (Volatile.Read(ref _oldest) is { } known && known.Begin == begin)
        {
            return known.Timestamp; // kept: a description of a topic does not open the logs of its partitions at rest
        }
        using var set = Read(begin, 1, 1);
        foreach (var record in set)
        {
            Volatile.Write(ref _oldest, new OldestRecord(begin, record.Timestamp));
            return record.Timestamp;
        }
        return null;
    }

    /// <summary>
    /// Applies the topic's retention at <paramref name="now"/> (epoch ms): advances the begin offset past what may
    /// go and lets the next commit free whole segments below it. Returns the new begin offset if it moved.
    /// </summary>
    public async Task<long?> ApplyRetentionAsync(TopicConfig config, long now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        if ((config.RetentionMs <= 0 && config.RetentionBytes <= 0) || Failure is not null || _closed)
        {
            return null;
        }
        if (Unrecovered)
        {
            // Opened at rest from its marker, without its index: recovered only when something may go.
            bool bySize = config.RetentionBytes > 0 && SizeBytes > config.RetentionBytes;
            bool byTime = config.RetentionMs > 0 && OldestTimestamp() is long oldest && oldest < now - config.RetentionMs;
            if (!bySize && !byTime)
            {
                return null;
            }
            using (Enter())
            {
            }
        }
        if (Failure is not null || !_verified.Task.IsCompleted)
        {
            // While the log below the recovery checkpoint is verified, nothing under the scan may go; next time.
            return null;
        }
        var committed = Volatile.Read(ref _committed);
        var points = _index.Points().Where(p => p.Offset <= committed.Offset).ToList();
        long maxTimestamp;
        lock (_appendLock)
        {
            maxTimestamp = _maxTimestamp;
        }
        // The end of the committed log is a cut point too: when everything is old enough, everything goes.
        points.Add(new RetentionPoint(committed.Offset, committed.Address, maxTimestamp));
        long? cut = RetentionPolicy.CutOffset(points, TailAddress(), now, config.RetentionMs, config.RetentionBytes);
        if (cut is not long offset || offset <= BeginOffset)
        {
            return null;
        }
        return await DeleteRecordsBeforeAsync(offset, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Advances the begin offset to <paramref name="offset"/> (Kafka's delete-records) and persists it; whole
    /// segments below are freed by the commit. Returns the new begin offset.
    /// </summary>
    public async Task<long> DeleteRecordsBeforeAsync(long offset, CancellationToken cancellationToken = default)
    {
        using var use = Enter();
        // Truncating under the background verification's scan would look like a gap to it.
        await _verified.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        ThrowIfUnavailable();
        var committed = Volatile.Read(ref _committed);
        long begin = BeginOffset;
        if (offset < 0 || offset > committed.Offset)
        {
            throw new OffsetOutOfRangeException(offset, begin, committed.Offset);
        }
        if (offset <= begin)
        {
            return begin;
        }
        long cutAddress = offset == committed.Offset ? committed.Address : FindBatchAddress(offset, committed);
        await _commitGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (offset <= Volatile.Read(ref _beginOffset))
            {
                return BeginOffset; // a concurrent deletion or retention got further: the begin offset never moves back
            }
            new PartitionState(offset).Save(_directory);
            Volatile.Write(ref _beginOffset, offset);
        }
        finally
        {
            _commitGate.Release();
        }
        _log!.TruncateUntil(cutAddress);
        _index.TruncateBefore(cutAddress);
        // The truncation is persisted (and segments below it deleted) by the next commit.
        await CommitAsync(force: true).ConfigureAwait(false);
        // A checkpoint at or below the new begin address is of no use to a restart: one at this commit replaces it.
        await CheckpointCommittedAsync().ConfigureAwait(false);
        return offset;
    }
}
