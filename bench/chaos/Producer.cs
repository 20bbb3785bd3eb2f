namespace Gateway.Chaos;

/// <summary>
/// One producer: a request at a time with the workload's acks, 1 record or 2..max records, keyless or keyed. An
/// idempotent producer sends a fresh idempotency key per request and retries a request left unanswered (or refused
/// for now) with the same key and records once the server is back; a plain one never retries: its unanswered records
/// are indeterminate.
/// </summary>
internal sealed class Producer(int id, bool idempotent, IWorkloadClient client, ServerGate gate, int maxRecords, int seed)
{
    private readonly Random _random = new(seed);
    private long _ackedRecords;

    public int Id => id;

    public bool Idempotent => idempotent;

    /// <summary>Sequences 0..SentRecords-1 were put in a request (sent at least once).</summary>
    public long SentRecords { get; private set; }

    public long AckedRecords => Interlocked.Read(ref _ackedRecords);

    /// <summary>Acknowledged records, with the partition and offset the answer gave.</summary>
    public List<Ack> Acked { get; } = [];

    /// <summary>Records of plain requests that got no answer (or a 5xx): they may or may not be in the log.</summary>
    public List<long> Indeterminate { get; } = [];

    /// <summary>Records of requests answered with a 4xx: never appended.</summary>
    public List<long> Rejected { get; } = [];

    /// <summary>Records of idempotent requests still unanswered when the run ended (retries gave up).</summary>
    public List<long> Unresolved { get; } = [];

    public long Requests { get; private set; }

    public long Retries { get; private set; }

    public long Replays { get; private set; }

    /// <summary>Attempts that got no 200, by answer: "no answer", or status and problem code ("503 storage_unavailable").</summary>
    public Dictionary<string, int> Errors { get; } = new(StringComparer.Ordinal);

    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
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
            int count = _random.Next(2) == 0 ? 1 : _random.Next(2, maxRecords + 1);
            long first = SentRecords;
            SentRecords += count;
            Requests++;
            var records = Records(first, count, keyed: _random.Next(2) == 0);
            string? key = idempotent ? $"chaos-p{id}-r{Requests}" : null;
            try
            {
                await SendUntilSettledAsync(records, key, first, count, abort);
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                AddRange(Unresolved, first, count);
                return;
            }
        }
    }

    private async Task SendUntilSettledAsync(List<(string? Key, string Value)> records, string? key, long first, int count, CancellationToken abort)
    {
        for (int attempt = 0; ; attempt++)
        {
            if (attempt > 0)
            {
                Retries++;
                await Task.Delay(Math.Min(1000, 20 * attempt), abort);
                await gate.WaitOpenAsync(abort);
            }
            using var inFlight = gate.Enter();
            var answer = await client.ProduceAsync(records, key);
            if (answer.Kind == AnswerKind.Ok)
            {
                if (answer.Offsets.Count != count)
                {
                    Count($"{answer.Label} with {answer.Offsets.Count} offsets for {count} records");
                    AddRange(Indeterminate, first, count);
                    return;
                }
                for (int i = 0; i < count; i++)
                {
                    Acked.Add(new Ack(first + i, answer.Offsets[i].Partition, answer.Offsets[i].Offset));
                }
                Interlocked.Add(ref _ackedRecords, count);
                Replays += answer.Replayed ? 1 : 0;
                return;
            }
            Count(answer.Label);
            bool mayHaveLanded = answer.Kind is AnswerKind.NoAnswer or AnswerKind.ServerError;
            if (idempotent && (mayHaveLanded || answer.Kind == AnswerKind.Busy))
            {
                continue;
            }
            AddRange(mayHaveLanded ? Indeterminate : Rejected, first, count);
            return;
        }
    }

    private List<(string? Key, string Value)> Records(long first, int count, bool keyed)
    {
        var records = new List<(string?, string)>(count);
        for (int i = 0; i < count; i++)
        {
            records.Add((keyed ? $"k{_random.Next(1000)}" : null, RecordId.Format(id, first + i)));
        }
        return records;
    }

    private void Count(string error) => Errors[error] = Errors.GetValueOrDefault(error) + 1;

    private static void AddRange(List<long> list, long first, int count)
    {
        for (int i = 0; i < count; i++)
        {
            list.Add(first + i);
        }
    }

    /// <summary>An acknowledged record: the producer's sequence and where the server said it landed.</summary>
    internal readonly record struct Ack(long Sequence, int Partition, long Offset);
}
