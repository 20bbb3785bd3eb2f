using FASTER.core;
using Gateway.Log.Device;
using Gateway.Storage;

namespace Gateway.Log;

// The partition's recovery at open: the committed range rebuilt and checked, the tail past the commit record,
// recovery checkpoints, and the verification of the log below them.
public sealed partial class PartitionLog
{
    /// <summary>
    /// Rebuilds offsets, the index and the remembered Idempotency-Keys from the committed range, checking every batch
    /// it reads: CRC, dense offsets, and that the range ends at the offset the last commit recorded. Anything else is
    /// corruption, never an empty log. With a usable recovery checkpoint only the log after it is read now; the log
    /// below it is verified the same way before the partition opens when it is small
    /// (<see cref="LogStoreOptions.VerifyBeforeOpenBytes"/>), else in the background while the partition serves.
    /// </summary>
    private void Recover(bool fresh)
    {
        if (!fresh)
        {
            RecoverTail();
        }
        _log!.Recover();
        var state = PartitionState.Load(_directory);
        long? committedNext = _log.RecoveredCookie is { Length: 8 } cookie ? BitConverter.ToInt64(cookie) : null;
        long committedAddress = _log.CommittedUntilAddress;
        if (committedNext is null && !fresh)
        {
            // Every partition is committed once when it is created: its files without a commit record mean the
            // record was lost, and starting empty would hand out offsets that were already acknowledged.
            throw Corrupted("its commit record is missing");
        }
        long recoveredAt = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var checkpoint = fresh ? null : UsableCheckpoint(committedAddress, committedNext);

        long? firstBase;
        long next;
        int batches;
        if (checkpoint is null)
        {
            (firstBase, next, _maxTimestamp, batches) = ScanCommitted(_log.BeginAddress, committedAddress, state.BeginOffset, firstSetsNext: true, _index, long.MinValue, recoveredAt);
            _verified.TrySetResult();
        }
        else
        {
            // Nothing below the checkpoint is read now: the files must be there, the verification reads them later.
            CheckSegmentFiles(committedAddress);
            firstBase = state.BeginOffset;
            foreach (var remembered in checkpoint.Batches)
            {
                _idempotency.Remember(remembered.Stamp, remembered.BaseOffset, remembered.Count, recoveredAt);
            }
            foreach (var kept in checkpoint.Producers)
            {
                _producers.Record(kept.Batch, kept.BaseOffset, recoveredAt);
            }
            (next, _maxTimestamp, batches) = (checkpoint.NextOffset, checkpoint.MaxTimestamp, 0);
            if (checkpoint.Address < committedAddress)
            {
                (_, next, _maxTimestamp, batches) = ScanCommitted(checkpoint.Address, committedAddress, checkpoint.NextOffset, firstSetsNext: false, _index, checkpoint.MaxTimestamp, recoveredAt);
            }
        }
        if (firstBase is null && committedNext is long recorded)
        {
            if (state.BeginOffset < recorded)
            {
                // Retention and delete-records persist the begin offset before they truncate: only they may empty
                // the committed range. Here records [begin, recorded) should be stored and none can be read.
                throw Corrupted($"no record can be read, but offsets {state.BeginOffset} to {recorded} should be stored (a segment file is missing?)");
            }
            // Everything was deleted: no batch is left to tell the next offset, the last commit does.
            next = Math.Max(next, recorded);
        }
        if (firstBase is long first && first > state.BeginOffset)
        {
            throw FirstRecordsMissing(first, state.BeginOffset);
        }
        if (committedNext is long expectedNext && next != expectedNext)
        {
            throw Corrupted($"the committed range ends at offset {next}, but the last commit recorded {expectedNext}");
        }
        _nextOffset = next;
        _beginOffset = Math.Max(state.BeginOffset, firstBase ?? next);
        _committed = new CommitPoint(next, committedAddress);
        _issuedOffset = next;
        _checkpointAddress = checkpoint?.Address ?? 0;
        if (checkpoint is not null)
        {
            if (checkpoint.Address - _log.BeginAddress <= _options.VerifyBeforeOpenBytes)
            {
                VerifyBelow(checkpoint);
                _verified.TrySetResult();
            }
            else
            {
                _verification = VerifyInBackgroundAsync(checkpoint);
            }
        }
        if (fresh)
        {
            // The first commit record (next offset 0), before the topic that holds this partition is saved.
            _log.CommitStrongly(out _, out _, spinWait: true, cookie: BitConverter.GetBytes(next));
            if (_commitManager?.ListCommits().Any() != true)
            {
                throw Corrupted("its first commit record could not be written");
            }
        }
        RecoveredFromAddress = checkpoint?.Address ?? _log.BeginAddress;
        LogRecovered(_logger, Topic, Partition, _beginOffset, next, batches, RecoveredFromAddress);
    }

    /// <summary>
    /// Before FasterLog recovers from the commit record: when entries past the record's tail reached the disk (it is
    /// written through the page cache, and a power cut can leave an older one), moves the record to their end; then
    /// cuts whatever lies past the log's end (<see cref="LogTail"/>).
    /// </summary>
    private void RecoverTail()
    {
        if (_commitManager is null || !_commitManager.TryReadRecovery(out var info) || info.Cookie is not { Length: 8 } cookie)
        {
            return; // no record (or commit files of before it): recovery says what that means
        }
        using var tail = new LogTail(Path.Combine(_directory, "data.log"), _pageSizeBits, _options.SegmentSizeBits);
        long recordedNext = BitConverter.ToInt64(cookie);
        var (end, next) = tail.Find(info.UntilAddress, recordedNext);
        if (end > info.UntilAddress)
        {
            // What was read may still be in the page cache (a synced write the kill interrupted): on disk before use.
            tail.Sync();
            LogTailRecovered(_logger, Topic, Partition, end - info.UntilAddress, recordedNext, next);
            info.UntilAddress = end;
            info.Cookie = BitConverter.GetBytes(next);
            _commitManager.Rewrite(info);
        }
        tail.CutAfter(end);
    }

    /// <summary>
    /// The recovery checkpoint, if it can stand in for a scan of the log below it: inside the committed range, above
    /// the begin address, consistent with the last commit, and at the start of a batch with its next offset.
    /// </summary>
    private RecoveryCheckpoint? UsableCheckpoint(long committedAddress, long? committedNext)
    {
        var checkpoint = RecoveryCheckpoint.Load(_directory);
        if (checkpoint is null || checkpoint.Address <= _log!.BeginAddress || checkpoint.Address > committedAddress || checkpoint.NextOffset > committedNext)
        {
            return null;
        }
        if (checkpoint.Address == committedAddress)
        {
            return checkpoint.NextOffset == committedNext ? checkpoint : null;
        }
        try
        {
            // Not the partition's corruption if no batch starts there: the checkpoint is just not usable.
            using var scanner = new BatchScanner(_log, checkpoint.Address, committedAddress, ScanBufferingMode.SinglePageBuffering, detail => new LogCorruptedException(detail));
            if (!scanner.TryNext(out var owner, out var batch, out long address))
            {
                return null;
            }
            using (owner)
            {
                return address == checkpoint.Address && batch.BaseOffset == checkpoint.NextOffset ? checkpoint : null;
            }
        }
        catch (LogCorruptedException)
        {
            return null; // no batch starts there: recovery scans from the beginning instead
        }
    }

    /// <summary>Checks that every segment file of the committed range is there and the last one reaches its end.</summary>
    private void CheckSegmentFiles(long committedAddress)
    {
        if (SegmentFilesProblem(_log!.BeginAddress, committedAddress) is { } problem)
        {
            throw Corrupted(problem);
        }
    }

    /// <summary>What is wrong with the segment files of the committed range [<paramref name="beginAddress"/>, <paramref name="committedAddress"/>), or null.</summary>
    private string? SegmentFilesProblem(long beginAddress, long committedAddress)
    {
        int bits = _options.SegmentSizeBits;
        long first = beginAddress >> bits, last = (committedAddress - 1) >> bits;
        for (long segment = first; segment <= last; segment++)
        {
            var file = new FileInfo(Path.Combine(_directory, $"data.log.{segment}"));
            if (!file.Exists || file.Length == 0)
            {
                // FasterLog's recovery creates a missing segment file empty: either way the bytes are gone.
                return $"a segment file is missing: {file.Name}, part of the committed range, is {(file.Exists ? "empty" : "gone")}";
            }
            long needed = segment == last ? committedAddress - (segment << bits) : 1;
            if (file.Length < needed)
            {
                return $"segment file {file.Name} was cut short: it has {file.Length} bytes, the committed range needs {needed}";
            }
        }
        return null;
    }

    /// <summary>
    /// Reads and checks every batch in [<paramref name="from"/>, <paramref name="until"/>): each must pass its CRC
    /// and continue the offsets densely, the first one at <paramref name="next"/> — unless
    /// <paramref name="firstSetsNext"/>: from the begin address the first batch may start anywhere, and
    /// <paramref name="next"/> is the answer only if no batch is read. Notes index entries and, with
    /// <paramref name="rememberAt"/>, the Idempotency-Keys of the batches.
    /// </summary>
    private (long? FirstBase, long Next, long MaxTimestamp, int Batches) ScanCommitted(
        long from, long until, long next, bool firstSetsNext, OffsetIndex index, long maxTimestamp, long? rememberAt)
    {
        long? firstBase = null;
        int batches = 0;
        using var scanner = Scan(from, until, ScanBufferingMode.DoublePageBuffering);
        while (scanner.TryNext(out var owner, out var batch, out long address))
        {
            using (owner)
            {
                if (_closing)
                {
                    break;
                }
                if (firstBase is null)
                {
                    // From the begin address the first batch may start below the begin offset (a deletion inside
                    // it); callers check it against the begin offset.
                    firstBase = batch.BaseOffset;
                    next = firstSetsNext ? batch.BaseOffset : next;
                }
                if (batch.BaseOffset != next)
                {
                    throw Corrupted($"batch at address {address} starts at offset {batch.BaseOffset}, expected {next}");
                }
                index.OnAppend(batch.BaseOffset, address, maxTimestamp);
                maxTimestamp = Math.Max(maxTimestamp, batch.MaxTimestamp);
                if (rememberAt is long at && batch.Stamp is { } stamp)
                {
                    // The batch headers are the deduplication state: as durable as the data. Recovered stamps
                    // count their window from this start, so a restart never shortens it.
                    _idempotency.Remember(stamp, batch.BaseOffset, batch.Count, at);
                }
                if (rememberAt is long producerAt && batch.Producer is { } producer)
                {
                    _producers.Record(producer, batch.BaseOffset, producerAt);
                }
                next = batch.NextOffset;
                batches++;
            }
        }
        return (firstBase, next, maxTimestamp, batches);
    }

    /// <summary>Checks the log below a recovery checkpoint as recovery would have, and indexes it. False when closed first.</summary>
    private bool VerifyBelow(RecoveryCheckpoint checkpoint)
    {
        var lower = new OffsetIndex(_options.IndexIntervalBytes);
        var (firstBase, next, _, _) = ScanCommitted(_log!.BeginAddress, checkpoint.Address, 0, firstSetsNext: true, lower, long.MinValue, rememberAt: null);
        if (_closing)
        {
            return false;
        }
        long begin = Volatile.Read(ref _beginOffset);
        if (firstBase is null || firstBase > begin)
        {
            throw FirstRecordsMissing(firstBase, begin);
        }
        if (next != checkpoint.NextOffset)
        {
            throw Corrupted($"the log below address {checkpoint.Address} ends at offset {next}, but the recovery checkpoint there recorded {checkpoint.NextOffset}");
        }
        _index.Prepend(lower);
        return true;
    }

    private async Task VerifyInBackgroundAsync(RecoveryCheckpoint checkpoint)
    {
        // One partition at a time, so that a restart with much data does not take every core from serving.
        var gate = _verificationGate;
        try
        {
            await gate.WaitAsync(_closeSource.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _verified.TrySetResult();
            return;
        }
        try
        {
            if (await Task.Run(() => VerifyBelow(checkpoint)).ConfigureAwait(false))
            {
                LogVerified(_logger, Topic, Partition, checkpoint.Address - _log!.BeginAddress);
            }
        }
        catch (Exception ex) when (ex is FasterException or LogCorruptedException or IOException)
        {
            var failure = ex as LogCorruptedException ?? Corrupted($"verifying the log below address {checkpoint.Address} failed: {ex.Message}");
            LogRecoveryFailed(_logger, Topic, Partition, failure.Message);
        }
        finally
        {
            gate.Release();
            _verified.TrySetResult();
        }
    }
}
