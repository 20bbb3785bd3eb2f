namespace Gateway.Storage.Kafka.Groups;

/// <summary>
/// Idempotency-Key across nodes, on the same log as the groups: an attempt first appends a <c>claim</c> of its key.
/// Applied in the log's order, the first claim of a key holds it; a later claim with the same content is told that an
/// attempt is in flight (it waits and claims again) or, once the holder appended its records and said so
/// (<c>done</c>, with each record's offset), is answered from them; a claim with other content is 422. A holder that
/// fails says so (<c>release</c>); one that dies holds the key only until its claim expires (twice
/// <c>Kafka:RequestTimeoutMs</c>): a retry then appends again, so a node killed between its append and its
/// <c>done</c> (milliseconds) leaves that request at least once. Keys are kept for <c>Kafka:IdempotencyWindowMs</c>.
/// </summary>
public sealed partial class KafkaGroups
{
    private const int PruneEveryOffsets = 1024;

    private readonly Lock _keysLock = new();
    private readonly Dictionary<(string Topic, long ProducerId), KeyClaim> _keys = [];
    private TaskCompletionSource _keysChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal async ValueTask<IIdempotentAttempt> BeginIdempotentAsync(string topic, IdempotencyStamp stamp, CancellationToken cancellationToken)
    {
        var deadline = Environment.TickCount64 + (long)_clients.RequestTimeout.TotalMilliseconds;
        while (true)
        {
            var changed = Volatile.Read(ref _keysChanged);
            var command = new GroupCommand
            {
                Id = NextCommandId(),
                Op = "claim",
                Topic = topic,
                ProducerId = stamp.ProducerId,
                RequestHash = stamp.RequestHash,
                LifetimeMs = 2L * _storage.Options.RequestTimeoutMs,
            };
            var outcome = (ClaimOutcome)(await IssueAsync(command).ConfigureAwait(false))!;
            if (outcome == ClaimOutcome.Granted)
            {
                return new Attempt(this, topic, stamp.ProducerId, command.Id);
            }
            if (outcome == ClaimOutcome.Done)
            {
                return IIdempotentAttempt.None; // the lookup that follows answers from what the first attempt appended
            }
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                throw new StorageFailureException("An earlier attempt of this Idempotency-Key is still in flight on another node; retry later.");
            }
            try
            {
                await changed.Task.WaitAsync(TimeSpan.FromMilliseconds(Math.Min(left, 500)), cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // claim again: the holder's claim may have expired by the log's clock
            }
        }
    }

    internal bool TryGetIdempotent(string topic, int partition, long producerId, out IdempotentBatch batch)
    {
        lock (_keysLock)
        {
            if (_keys.TryGetValue((topic, producerId), out var claim) && claim.Appended is { } appended && appended.TryGetValue(partition, out var offsets) && offsets.Count > 0)
            {
                batch = new IdempotentBatch(offsets[0], offsets.Count, claim.RequestHash, offsets);
                return true;
            }
        }
        batch = default;
        return false;
    }

    private ClaimOutcome ApplyClaim(GroupCommand c)
    {
        var now = _clock.GetUtcNow();
        var key = (c.Topic!, c.ProducerId);
        lock (_keysLock)
        {
            if (_keys.TryGetValue(key, out var held) && held.ExpiresAt <= now)
            {
                _keys.Remove(key);
                held = null;
            }
            if (held is null)
            {
                _keys[key] = new KeyClaim(c.Id, c.RequestHash, now.AddMilliseconds(c.LifetimeMs));
                return ClaimOutcome.Granted;
            }
            if (held.RequestHash != c.RequestHash)
            {
                throw new IdempotencyKeyReusedException();
            }
            return held.Appended is null ? ClaimOutcome.Busy : ClaimOutcome.Done;
        }
    }

    private void ApplyDone(GroupCommand c)
    {
        lock (_keysLock)
        {
            if (_keys.TryGetValue((c.Topic!, c.ProducerId), out var held) && held.ClaimId == c.Claim && held.Appended is null)
            {
                held.Appended = c.Appended ?? [];
                held.ExpiresAt = _clock.GetUtcNow().AddMilliseconds(c.LifetimeMs);
            }
        }
        SignalKeys();
    }

    private void ApplyRelease(GroupCommand c)
    {
        lock (_keysLock)
        {
            var key = (c.Topic!, c.ProducerId);
            if (_keys.TryGetValue(key, out var held) && held.ClaimId == c.Claim && held.Appended is null)
            {
                _keys.Remove(key);
            }
        }
        SignalKeys();
    }

    private void ForgetKeys(string topic)
    {
        lock (_keysLock)
        {
            foreach (var key in _keys.Keys.Where(k => k.Topic == topic).ToList())
            {
                _keys.Remove(key);
            }
        }
    }

    /// <summary>Drops expired keys at fixed log offsets, so every replica drops the same ones at the same place.</summary>
    private void PruneKeys(long offset)
    {
        if (offset % PruneEveryOffsets != 0)
        {
            return;
        }
        var now = _clock.GetUtcNow();
        lock (_keysLock)
        {
            foreach (var key in _keys.Where(k => k.Value.ExpiresAt <= now).Select(k => k.Key).ToList())
            {
                _keys.Remove(key);
            }
        }
    }

    private void SignalKeys() =>
        Interlocked.Exchange(ref _keysChanged, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private List<KeySnapshot> ExportKeys()
    {
        lock (_keysLock)
        {
            return [.. _keys.Select(k => new KeySnapshot
            {
                Topic = k.Key.Topic,
                ProducerId = k.Key.ProducerId,
                ClaimId = k.Value.ClaimId,
                RequestHash = k.Value.RequestHash,
                ExpiresAt = k.Value.ExpiresAt,
                Appended = k.Value.Appended,
            })];
        }
    }

    private void ImportKeys(List<KeySnapshot>? keys)
    {
        lock (_keysLock)
        {
            _keys.Clear();
            foreach (var k in keys ?? [])
            {
                _keys[(k.Topic, k.ProducerId)] = new KeyClaim(k.ClaimId, k.RequestHash, k.ExpiresAt) { Appended = k.Appended };
            }
        }
    }

    private enum ClaimOutcome
    {
        Granted,
        Busy,
        Done,
    }

    /// <summary>A key as the log has it: who claimed it, for what content, until when, and (once done) where its records went.</summary>
    private sealed class KeyClaim(string claimId, long requestHash, DateTimeOffset expiresAt)
    {
        public string ClaimId { get; } = claimId;

        public long RequestHash { get; } = requestHash;

        public DateTimeOffset ExpiresAt { get; set; } = expiresAt;

        public Dictionary<int, List<long>>? Appended { get; set; }
    }

    /// <summary>The claim this node holds for one attempt: <c>done</c> with what it appended, else <c>release</c> when disposed.</summary>
    private sealed class Attempt(KafkaGroups owner, string topic, long producerId, string claimId) : IIdempotentAttempt
    {
        private bool _completed;

        public async ValueTask CompleteAsync(IReadOnlyDictionary<int, IReadOnlyList<long>> appended, CancellationToken cancellationToken = default)
        {
            await owner.IssueAsync(new GroupCommand
            {
                Op = "done",
                Topic = topic,
                ProducerId = producerId,
                Claim = claimId,
                Appended = appended.ToDictionary(a => a.Key, a => a.Value.ToList()),
                LifetimeMs = owner._storage.Options.IdempotencyWindowMs,
            }).ConfigureAwait(false);
            _completed = true;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_completed)
            {
                await owner.IssueQuietlyAsync(new GroupCommand { Op = "release", Topic = topic, ProducerId = producerId, Claim = claimId }).ConfigureAwait(false);
            }
        }
    }
}
