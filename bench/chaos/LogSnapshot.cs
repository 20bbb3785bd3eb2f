using System.Net;
using System.Text.Json;

namespace Gateway.Chaos;

/// <summary>
/// Every partition of a topic read through the public fetch API from its begin offset to its end offset, with what
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

    public static async Task<LogSnapshot> ReadAsync(HttpClient client, string topic, int partitions)
    {
        var contents = new PartitionContent[partitions];
        for (int p = 0; p < partitions; p++)
        {
            contents[p] = await ReadPartitionAsync(client, topic, p);
        }
        return new LogSnapshot(contents);
    }

    private static async Task<PartitionContent> ReadPartitionAsync(HttpClient client, string topic, int partition)
    {
        var content = new PartitionContent(partition);
        long offset = 0;
        bool first = true;
        while (true)
        {
            using var response = await client.GetAsync(new Uri($"/v1/topics/{topic}/partitions/{partition}/records?offset={offset}&limit=10000&maxBytes=16000000", UriKind.Relative));
            byte[] body = await response.Content.ReadAsByteArrayAsync();
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && first)
            {
                // Offset 0 is below the begin offset (nothing is deleted here, but read from wherever the log begins).
                using var range = JsonDocument.Parse(body);
                offset = range.RootElement.GetProperty("beginOffset").GetInt64();
                first = false;
                continue;
            }
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new ChaosFailure($"reading {topic}/{partition} at offset {offset}: {(int)response.StatusCode} {ProblemJson.Code(body)}");
            }
            using var json = JsonDocument.Parse(body);
            var root = json.RootElement;
            if (first)
            {
                content.BeginOffset = root.GetProperty("beginOffset").GetInt64();
                content.Expected = content.BeginOffset;
                first = false;
            }
            content.EndOffset = root.GetProperty("endOffset").GetInt64();
            int count = 0;
            foreach (var record in root.GetProperty("records").EnumerateArray())
            {
                content.Add(record.GetProperty("offset").GetInt64(), record.GetProperty("value"));
                count++;
            }
            long next = root.GetProperty("nextOffset").GetInt64();
            if (count == 0 || next >= content.EndOffset)
            {
                break;
            }
            offset = next;
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

        public void Add(long offset, JsonElement value)
        {
            if (offset != Expected)
            {
                Gaps.Add(offset > Expected
                    ? $"partition {partition}: offsets {Expected}..{offset - 1} are missing"
                    : $"partition {partition}: offset {offset} comes after offset {Expected - 1}");
            }
            Expected = offset + 1;
            Offsets.Add(offset);
            Ids.Add(value.ValueKind == JsonValueKind.String && RecordId.TryParse(value.GetString(), out long id) ? id : -1);
        }
    }
}
