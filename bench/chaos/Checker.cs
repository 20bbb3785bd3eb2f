namespace Gateway.Chaos;

/// <summary>
/// Jepsen's Kafka checker, for one topic read back in full: every acknowledged record at the partition and offset it
/// was acknowledged at (lost), no record twice (duplicates), dense offsets (gaps), each producer's records in send
/// order within a partition (reorders), nothing in the log no one sent (unexplained), every record the consumer
/// fetched still at the offset it was fetched at, and no committed offset going backwards.
/// </summary>
internal static class Checker
{
    public static CheckResult Check(LogSnapshot log, IReadOnlyList<Producer> producers, GroupConsumer consumer)
    {
        var result = new CheckResult();
        var counts = producers.ToDictionary(p => p.Id, p => new byte[p.SentRecords]);

        foreach (var partition in log.Partitions)
        {
            result.Gaps.AddRange(partition.Gaps);
            var lastSequence = new Dictionary<int, long>();
            for (int i = 0; i < partition.Ids.Count; i++)
            {
                long id = partition.Ids[i];
                int producer = id < 0 ? -1 : RecordId.Producer(id);
                long sequence = id < 0 ? -1 : RecordId.Sequence(id);
                if (!counts.TryGetValue(producer, out byte[]? seen) || sequence >= seen.Length)
                {
                    result.Unexplained.Add($"partition {partition.Partition} offset {partition.Offsets[i]}: a value no producer sent");
                    continue;
                }
                bool again = seen[sequence] > 0;
                seen[sequence] = (byte)Math.Min(255, seen[sequence] + 1);
                if (again)
                {
                    result.Duplicates.Add($"{RecordId.Format(producer, sequence)} again at partition {partition.Partition} offset {partition.Offsets[i]}");
                }
                else if (lastSequence.TryGetValue(producer, out long last) && sequence < last)
                {
                    result.Reorders.Add($"partition {partition.Partition} offset {partition.Offsets[i]}: {RecordId.Format(producer, sequence)} after {RecordId.Format(producer, last)}");
                }
                lastSequence[producer] = Math.Max(sequence, lastSequence.GetValueOrDefault(producer, -1));
            }
        }

        foreach (var producer in producers)
        {
            byte[] seen = counts[producer.Id];
            var settled = new bool[seen.Length];
            foreach (var ack in producer.Acked)
            {
                settled[ack.Sequence] = true;
                long? at = ack.Partition < log.Partitions.Count ? log.Partitions[ack.Partition].IdAt(ack.Offset) : null;
                if (at != RecordId.Of(producer.Id, ack.Sequence))
                {
                    string where = seen[ack.Sequence] == 0 ? "is not in the log" : "is in the log at another place";
                    result.Lost.Add($"{RecordId.Format(producer.Id, ack.Sequence)}, acknowledged at partition {ack.Partition} offset {ack.Offset}, {where}");
                }
            }
            foreach (long sequence in producer.Indeterminate)
            {
                settled[sequence] = true;
                result.IndeterminateLanded += seen[sequence] > 0 ? 1 : 0;
            }
            foreach (long sequence in producer.Unresolved)
            {
                settled[sequence] = true;
                result.UnresolvedLanded += seen[sequence] > 0 ? 1 : 0;
            }
            for (long sequence = 0; sequence < seen.Length; sequence++)
            {
                // A record present that was neither acknowledged nor possibly written: a rejected request's records
                // (4xx) are never appended.
                if (seen[sequence] > 0 && !settled[sequence])
                {
                    result.Unexplained.Add($"{RecordId.Format(producer.Id, sequence)} is in the log, but its request was rejected");
                }
            }
            if (producer.Idempotent)
            {
                result.AckedIdempotent += producer.Acked.Count;
            }
            else
            {
                result.AckedPlain += producer.Acked.Count;
            }
            result.Indeterminate += producer.Indeterminate.Count;
            result.Rejected += producer.Rejected.Count;
            result.Unresolved += producer.Unresolved.Count;
        }

        for (int p = 0; p < consumer.Seen.Length; p++)
        {
            var fetched = consumer.Seen[p];
            for (int offset = 0; offset < fetched.Count; offset++)
            {
                if (fetched[offset] == GroupConsumer.NotSeen)
                {
                    continue;
                }
                result.ConsumedOffsets++;
                long? now = p < log.Partitions.Count ? log.Partitions[p].IdAt(offset) : null;
                if (now != fetched[offset])
                {
                    result.InconsistentReads.Add($"partition {p} offset {offset}: the consumer fetched {Describe(fetched[offset])}, the log now holds {(now is long id ? Describe(id) : "nothing")}");
                }
            }
        }
        result.InconsistentReads.AddRange(consumer.Anomalies);
        result.BackwardsCommits.AddRange(consumer.Backwards);
        return result;
    }

    private static string Describe(long id) => id < 0 ? "a value no producer sent" : RecordId.Format(RecordId.Producer(id), RecordId.Sequence(id));

    /// <summary>The figures of one check; every list holds one line per anomaly (the report shows the first few).</summary>
    internal sealed class CheckResult
    {
        public long AckedIdempotent { get; set; }

        public long AckedPlain { get; set; }

        public long Indeterminate { get; set; }

        public long IndeterminateLanded { get; set; }

        public long Rejected { get; set; }

        public long Unresolved { get; set; }

        public long UnresolvedLanded { get; set; }

        public long ConsumedOffsets { get; set; }

        public AnomalyList Lost { get; } = new();

        public AnomalyList Duplicates { get; } = new();

        public AnomalyList Gaps { get; } = new();

        public AnomalyList Reorders { get; } = new();

        public AnomalyList Unexplained { get; } = new();

        public AnomalyList InconsistentReads { get; } = new();

        public AnomalyList BackwardsCommits { get; } = new();

        public long Acked => AckedIdempotent + AckedPlain;

        /// <summary>The safety figures: each must be 0.</summary>
        public IEnumerable<(string Name, AnomalyList Items)> Safety =>
        [
            ("lost (acknowledged, not at their offset)", Lost),
            ("duplicates", Duplicates),
            ("offset gaps", Gaps),
            ("reorders (a producer's records out of send order in a partition)", Reorders),
            ("unexplained records (never sent, or rejected with a 4xx)", Unexplained),
            ("inconsistent consumer reads (skips, or an offset whose record changed)", InconsistentReads),
            ("committed offsets that went backwards", BackwardsCommits),
        ];

        public bool Safe => Safety.All(s => s.Items.Count == 0) && Unresolved == 0;
    }
}
