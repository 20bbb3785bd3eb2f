namespace Gateway.Chaos;

/// <summary>
/// Every partition of the workload's topic read through the workload's client from its begin offset to its end offset, with what
/// was wrong with the offsets themselves: gaps (an offset missing) and offsets that repeat or go back.
/// </summary>
internal sealed class LogSnapshot
{
    private LogSnapshot(PartitionContent[] partitions)
    {
        Partitions = partitions;
    }

    public IReadOnlyList<PartitionContent> Partitions { get; }

    public long Records => Partitions.Sum(p => (long)p.Ids.Count);

    public static async Task<LogSnapshot> ReadAsync(IWorkloadClient client, int partitions)
    {
        var contents = new PartitionContent[partitions];
        for (int p = 0; p < partitions; p++)
        {
            contents[p] = await ReadPartitionAsync(client, p);
        }
        return new LogSnapshot(contents);
    }

    private static async Task<PartitionContent> ReadPartitionAsync(IWorkloadClient client, int partition)
    {
        var content = new PartitionContent(partition);
        long offset = 0;
        bool first = true;
        while (true)
        {
            var page = await client.ReadAsync(partition, offset);
            if (first)
            {
                // From wherever the log begins (nothing is deleted here, but offset 0 may be below the begin offset).
                content.BeginOffset = page.BeginOffset;
                content.Expected = page.BeginOffset;
                first = false;
                if (offset < page.BeginOffset)
                {
                    offset = page.BeginOffset;
                    continue;
                }
            }
            content.EndOffset = page.EndOffset;
            foreach (var (recordOffset, value) in page.Records)
            {
                content.Add(recordOffset, value);
            }
            if (page.Records.Count == 0 || page.NextOffset >= content.EndOffset)
            {
                break;
            }
            offset = page.NextOffset;
        }
        if (content.Expected != content.EndOffset)
        {
            content.Gaps.Add($"partition {partition}: the records end at offset {content.Expected}, but the end offset is {content.EndOffset}");
        }
        return content;
    }

    /// <summary>One partition: the record id at each offset from <see cref="BeginOffset"/> (-1: a value no producer wrote).</summary>
    internal sealed class PartitionContent(int partition)
    {
        private Dictionary<long, long>? _byOffset;

        public int Partition => partition;

        public long BeginOffset { get; set; }

        public long EndOffset { get; set; }

        /// <summary>Ids in log order; for a dense log the id at offset o is at index o - BeginOffset.</summary>
        public List<long> Ids { get; } = [];

        public List<long> Offsets { get; } = [];

        /// <summary>Offsets missing, repeated or out of order.</summary>
        public AnomalyList Gaps { get; } = new();

        public long Expected { get; set; }

        /// <summary>The id at an offset; null when the log holds no record there.</summary>
        public long? IdAt(long offset)
        {
            if (Gaps.Count == 0)
            {
                long index = offset - BeginOffset;
                return index >= 0 && index < Ids.Count ? Ids[(int)index] : null;
            }
            if (_byOffset is null)
            {
                _byOffset = [];
                for (int i = 0; i < Offsets.Count; i++)
                {
                    _byOffset.TryAdd(Offsets[i], Ids[i]);
                }
            }
            return _byOffset.TryGetValue(offset, out long id) ? id : null;
        }

        public void Add(long offset, string? value)
        {
            if (offset != Expected)
            {
                Gaps.Add(offset > Expected
                    ? $"partition {partition}: offsets {Expected}..{offset - 1} are missing"
                    : $"partition {partition}: offset {offset} comes after offset {Expected - 1}");
            }
            Expected = offset + 1;
            Offsets.Add(offset);
            Ids.Add(RecordId.TryParse(value, out long id) ? id : -1);
        }
    }
}
