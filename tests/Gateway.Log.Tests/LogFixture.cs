using System.Text;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.Log.Tests;

internal static class LogFixture
{
    // openAtRest false: every partition is recovered at open (what tests of recovery itself need).
    public static LogStoreOptions Options(string directory, int flushIntervalMs = 2, int indexIntervalBytes = 4096, bool openAtRest = true) => new()
    {
        DataDirectory = directory,
        OpenAtRest = openAtRest,
        PageSizeBits = 16,
        MemorySizeBits = 18,
        SegmentSizeBits = 20,
        FlushIntervalMs = flushIntervalMs,
        IndexIntervalBytes = indexIntervalBytes,
    };

    public static RecordBatchBuilder Batch(params string[] values) => Batch(1000, values);

    public static RecordBatchBuilder Batch(long timestamp, params string[] values)
    {
        var builder = new RecordBatchBuilder();
        foreach (string value in values)
        {
            builder.Add(timestamp, Payload.Null, new Payload(Encoding.UTF8.GetBytes(value), PayloadFormat.Text), null);
        }
        return builder;
    }

    public static async Task<long> AppendAsync(PartitionLog partition, Acks acks, params string[] values)
    {
        using var batch = Batch(values);
        return await partition.AppendAsync(batch, acks);
    }

    public static List<(long Offset, string Value)> ReadAll(PartitionLog partition, long from, int maxRecords = 100_000, int maxBytes = int.MaxValue)
    {
        using var set = partition.Read(from, maxRecords, maxBytes);
        var records = new List<(long, string)>();
        foreach (var record in set)
        {
            records.Add((record.Offset, Encoding.UTF8.GetString(record.Value)));
        }
        return records;
    }
}
