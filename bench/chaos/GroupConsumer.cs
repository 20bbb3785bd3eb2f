namespace Gateway.Chaos;

/// <summary>
/// One consumer-group member (static id, so a join after a restart takes its own place): long-poll fetch, then commit
/// the next offset of every partition it fetched, with the generation of the fetch. A fenced answer (over HTTP: 404
/// <c>unknown_member</c>, 409 <c>stale_generation</c>/<c>partition_not_assigned</c>) makes it join again. It checks as it goes that fetches never
/// skip an offset, that an offset never shows two different records, and that no acknowledged commit goes backwards.
/// </summary>
internal sealed class GroupConsumer(IWorkloadClient client, ServerGate gate, int partitions)
{
    public const long NotSeen = long.MinValue;
    private const string MemberId = "chaos-consumer";
    private readonly long[] _expected = new long[partitions];
    private readonly long[] _maxCommitted = Enumerable.Repeat(-1L, partitions).ToArray();
    private readonly Lock _lock = new();
    private long _generation = -1;

    /// <summary>The record id seen at each offset (index = offset): <see cref="NotSeen"/> where none was, -1 for a value no producer wrote.</summary>
    public List<long>[] Seen { get; } = [.. Enumerable.Range(0, partitions).Select(_ => new List<long>())];

    /// <summary>Acknowledged commits per partition, in the order they were answered.</summary>
    public List<long>[] Commits { get; } = [.. Enumerable.Range(0, partitions).Select(_ => new List<long>())];

    /// <summary>Every time a committed offset was found lower than one acknowledged before.</summary>
    public AnomalyList Backwards { get; } = new();

    /// <summary>Every time an offset was fetched with another record than before, or a fetch skipped offsets.</summary>
    public AnomalyList Anomalies { get; } = new();

    public long Fetches { get; private set; }

    public long RecordsFetched { get; private set; }

    public long CommitsUnanswered { get; private set; }

    public long Joins { get; private set; }

    public long DescribeChecks { get; private set; }

    public Dictionary<string, int> Errors { get; } = new(StringComparer.Ordinal);

    public long CommitsAcknowledged => Commits.Sum(c => (long)c.Count);

    public async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await gate.WaitOpenAsync(stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            using var inFlight = gate.Enter();
            if (_generation < 0)
            {
                await JoinAsync();
                continue;
            }
            var fetched = await FetchAsync();
            if (fetched.Count > 0)
            {
                await CommitAsync(fetched);
            }
        }
    }

    /// <summary>
    /// Reads the group's committed offsets back (GET /v1/groups/{g}) while the consumer is paused and checks that none
    /// is lower than the highest commit acknowledged so far: commits acknowledged before a kill must survive it.
    /// </summary>
    public async Task VerifyCommittedAsync(string when)
    {
        // No group (null): it is gone, and with it every offset it had committed (a power cut can do that to a store
        // that does not sync): each partition counts as gone back, and the run goes on to show what else was lost.
        var committed = await client.CommittedAsync() ?? new long?[partitions];
        lock (_lock)
        {
            DescribeChecks++;
            for (int p = 0; p < partitions; p++)
            {
                if (_maxCommitted[p] >= 0 && (committed[p] is not long now || now < _maxCommitted[p]))
                {
                    Backwards.Add($"partition {p}: {when} the group's committed offset is {committed[p]?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, but {_maxCommitted[p]} was acknowledged before");
                    // Counted once: from here the consumer commits again from where the group now stands.
                    _maxCommitted[p] = committed[p] ?? -1;
                }
            }
        }
    }

    private async Task JoinAsync()
    {
        var answer = await client.JoinAsync(MemberId);
        if (answer.Kind == AnswerKind.Ok)
        {
            _generation = answer.Value;
            Joins++;
            return;
        }
        Count(answer.Label);
        await Task.Delay(100);
    }

    /// <summary>One long-poll fetch; returns the next offset of every partition it returned records of.</summary>
    private async Task<Dictionary<int, long>> FetchAsync()
    {
        var next = new Dictionary<int, long>();
        var answer = await client.FetchAsync(MemberId);
        if (answer is not { Kind: AnswerKind.Ok, Value: { } fetched })
        {
            Settle(answer.Kind, answer.Label);
            return next;
        }
        Fetches++;
        _generation = fetched.Generation;
        foreach (var (p, offset, value) in fetched.Records)
        {
            long id = RecordId.TryParse(value, out long parsed) ? parsed : -1;
            Observe(p, offset, id);
            next[p] = offset + 1;
            RecordsFetched++;
        }
        return next;
    }

    private void Observe(int p, long offset, long id)
    {
        // After a restart or a new join the session starts again at the committed offset: going back is allowed
        // (at least once), going forward past an offset not yet seen in this session is a skip.
        if (offset > _expected[p])
        {
            Anomalies.Add($"partition {p}: fetch skipped from offset {_expected[p]} to {offset}");
        }
        _expected[p] = offset + 1;
        var seen = Seen[p];
        while (seen.Count <= offset)
        {
            seen.Add(NotSeen);
        }
        if (seen[(int)offset] != NotSeen && seen[(int)offset] != id)
        {
            Anomalies.Add($"partition {p}: offset {offset} was fetched as {seen[(int)offset]:x} and later as {id:x}");
        }
        seen[(int)offset] = id;
    }

    private async Task CommitAsync(Dictionary<int, long> next)
    {
        var answer = await client.CommitAsync(MemberId, _generation, next);
        if (answer.Kind == AnswerKind.NoAnswer)
        {
            CommitsUnanswered++;
            return;
        }
        if (answer is not { Kind: AnswerKind.Ok, Value: { } offsets })
        {
            Settle(answer.Kind, answer.Label);
            return;
        }
        lock (_lock)
        {
            foreach (var (p, offset) in offsets)
            {
                if (offset < _maxCommitted[p])
                {
                    Backwards.Add($"partition {p}: a commit was answered with offset {offset}, but {_maxCommitted[p]} was acknowledged before");
                }
                _maxCommitted[p] = Math.Max(_maxCommitted[p], offset);
                Commits[p].Add(offset);
            }
        }
    }

    /// <summary>A failed group answer: counted; a fenced member joins again.</summary>
    private void Settle(AnswerKind kind, string label)
    {
        if (kind != AnswerKind.NoAnswer)
        {
            Count(label);
        }
        if (kind == AnswerKind.Fenced)
        {
            _generation = -1;
        }
    }

    private void Count(string error) => Errors[error] = Errors.GetValueOrDefault(error) + 1;
}
