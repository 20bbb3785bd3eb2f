using Gateway.Storage;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Log.Tests;

public sealed class RetentionPolicyTests
{
    private static readonly RetentionPoint[] Points =
    [
        new(0, 64, long.MinValue),
        new(10, 1_000, 100),
        new(20, 2_000, 200),
        new(30, 3_000, 300),
        new(40, 4_000, 900),
    ];

    [Fact]
    public void Time_cuts_at_the_last_point_before_which_everything_is_older()
    {
        Assert.Equal(30, RetentionPolicy.CutOffset(Points, 5_000, now: 1_000, retentionMs: 650, retentionBytes: -1));
        Assert.Equal(40, RetentionPolicy.CutOffset(Points, 5_000, now: 2_000, retentionMs: 1_000, retentionBytes: -1));
        Assert.Equal(0, RetentionPolicy.CutOffset(Points, 5_000, now: 150, retentionMs: 100, retentionBytes: -1));
    }

    [Fact]
    public void Size_cuts_at_the_first_point_that_leaves_little_enough()
    {
        Assert.Equal(30, RetentionPolicy.CutOffset(Points, 5_000, now: 0, retentionMs: -1, retentionBytes: 2_000));
        Assert.Equal(20, RetentionPolicy.CutOffset(Points, 5_000, now: 0, retentionMs: -1, retentionBytes: 3_500));
        Assert.Equal(0, RetentionPolicy.CutOffset(Points, 5_000, now: 0, retentionMs: -1, retentionBytes: 1_000_000));
    }

    [Fact]
    public void The_stricter_of_time_and_size_wins_and_unlimited_keeps_everything()
    {
        Assert.Equal(30, RetentionPolicy.CutOffset(Points, 5_000, now: 400, retentionMs: 250, retentionBytes: 2_000));
        Assert.Null(RetentionPolicy.CutOffset(Points, 5_000, now: 10_000, retentionMs: -1, retentionBytes: -1));
    }

    [Fact]
    public void A_late_old_timestamp_does_not_let_newer_records_go()
    {
        // The bound is the running maximum: a point whose earlier records include a new one is never a cut.
        RetentionPoint[] points = [new(0, 64, long.MinValue), new(5, 500, 5_000), new(9, 900, 5_000)];
        Assert.Equal(0, RetentionPolicy.CutOffset(points, 1_000, now: 6_000, retentionMs: 2_000, retentionBytes: -1));
    }
}

public sealed class RetentionTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(10_000_000));

    public void Dispose() => _dir.Dispose();

    private string PartitionDirectory => Path.Combine(_dir.Path, "topics", "t", "0");

    private long DiskBytes => new DirectoryInfo(PartitionDirectory).EnumerateFiles("data.log.*").Sum(f => f.Length);

    /// <summary>
    /// FasterLog deletes segments below a committed truncation once its epoch moves on, which the next operation on
    /// the log (here an append) brings about; wait for that, within a bound.
    /// </summary>
    private async Task<long> DiskBytesAfterTruncationAsync(PartitionLog partition, long before)
    {
        for (int i = 0; i < 100 && DiskBytes >= before; i++)
        {
            await LogFixture.AppendAsync(partition, Acks.Disk, "tick");
            await Task.Delay(20);
        }
        return DiskBytes;
    }

    private static async Task FillAsync(PartitionLog partition, long timestamp, int batches)
    {
        for (int i = 0; i < batches; i++)
        {
            using var batch = LogFixture.Batch(timestamp, new string('x', 4000), new string('y', 4000));
            await partition.AppendAsync(batch, Acks.Memory);
        }
        await partition.FlushAsync();
    }

    [Fact]
    public async Task Records_older_than_retention_go_newer_stay_files_shrink_and_offsets_keep_growing()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var partition = (await store.CreateTopicAsync("t", 1, new TopicConfig { RetentionMs = 60_000 })).GetPartition(0);
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await FillAsync(partition, now - 3_600_000, 400); // ~3.2 MB an hour old
        long firstNew = partition.EndOffset;
        await FillAsync(partition, now, 20);
        long before = DiskBytes;

        await store.ApplyRetentionAsync();

        Assert.InRange(partition.BeginOffset, firstNew - 10, firstNew);
        var range = Assert.Throws<OffsetOutOfRangeException>(() => partition.Read(0, 1, 100));
        Assert.Equal(partition.BeginOffset, range.BeginOffset);
        Assert.Equal(40, LogFixture.ReadAll(partition, firstNew).Take(40).Count(r => r.Value.Length == 4000));

        long end = partition.EndOffset;
        Assert.Equal(end, await LogFixture.AppendAsync(partition, Acks.Disk, "after retention"));
        long after = await DiskBytesAfterTruncationAsync(partition, before);
        Assert.True(after < before - 1_000_000, $"files did not shrink: {before} → {after}");

        // An hour later, everything is old.
        _time.Advance(TimeSpan.FromHours(1));
        await store.ApplyRetentionAsync();
        Assert.Equal(partition.EndOffset, partition.BeginOffset);
    }

    [Fact]
    public async Task Size_retention_keeps_about_the_configured_bytes()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var partition = (await store.CreateTopicAsync("t", 1, new TopicConfig { RetentionBytes = 1_000_000 })).GetPartition(0);
        await FillAsync(partition, _time.GetUtcNow().ToUnixTimeMilliseconds(), 400);
        long end = partition.EndOffset;
        Assert.True(DiskBytes > 3_000_000);

        await store.ApplyRetentionAsync();

        long kept = end - partition.BeginOffset;
        Assert.InRange(kept * 4_000L, 900_000, 1_000_000); // records of ~4 KB: about 1 MB is left
        long after = await DiskBytesAfterTruncationAsync(partition, 3_000_000);
        Assert.True(after < 3_000_000, $"files did not shrink: {after}");
    }

    [Fact]
    public async Task Without_retention_nothing_goes()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await FillAsync(partition, 1, 10);
        _time.Advance(TimeSpan.FromDays(365));
        await store.ApplyRetentionAsync();
        Assert.Equal(0, partition.BeginOffset);
    }
}

public sealed class RetentionRaceTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Reads_racing_deletions_get_out_of_range_never_a_damaged_partition()
    {
        // Readers start where the log began a moment ago while deletions free whole segments under them: a read that
        // loses the race is told the offset is out of range, and the partition stays healthy.
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        for (int i = 0; i < 1_200; i++)
        {
            using var batch = LogFixture.Batch(new string('x', 4000), new string('y', 4000));
            await partition.AppendAsync(batch, Acks.Memory);
        }
        await partition.FlushAsync();

        using var stop = new CancellationTokenSource();
        int reads = 0;
        int outOfRange = 0;
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                long begin = partition.BeginOffset;
                try
                {
                    using var set = partition.Read(begin, 500, r == 0 ? 64 * 1024 : 4 << 20);
                    foreach (var record in set)
                    {
                        Assert.True(record.Value.Length is 4000 or 4, $"offset {record.Offset} has {record.Value.Length} bytes"); // the records, or a tick
                    }
                    Interlocked.Increment(ref reads);
                    Assert.InRange(partition.OffsetForTimestamp(0), begin, partition.EndOffset);
                }
                catch (OffsetOutOfRangeException)
                {
                    Interlocked.Increment(ref outOfRange);
                }
            }
        })).ToList();

        long end = partition.EndOffset;
        for (long cut = 50; cut < end - 100; cut += 50)
        {
            await partition.DeleteRecordsBeforeAsync(cut);
            await LogFixture.AppendAsync(partition, Acks.Disk, "tick");
        }
        await stop.CancelAsync();
        await Task.WhenAll(readers);

        Assert.Null(partition.Failure);
        Assert.True(reads > 0);
        Assert.True(outOfRange > 0, "no read lost a race: the test did not test it");
        // A read of a deleted segment does not make it again (as an empty file).
        Assert.DoesNotContain(new DirectoryInfo(Path.Combine(_dir.Path, "topics", "t", "0")).EnumerateFiles("data.log.*"), f => f.Length == 0);
        Assert.Equal(partition.EndOffset - partition.BeginOffset, LogFixture.ReadAll(partition, partition.BeginOffset).Count);
    }
}

public sealed class StoredReadTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Large_reads_from_the_files_return_what_small_reads_through_FasterLog_return()
    {
        // Pages of 64 KiB, 256 KiB in memory, segments of 1 MiB: ~3 MB of batches of many sizes cross pages and
        // segments, and large reads (≥ 1 MiB asked) of what left memory come straight from the files.
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        var random = new Random(7);
        for (int i = 0; i < 600; i++)
        {
            var values = Enumerable.Range(0, 1 + random.Next(8)).Select(v => new string((char)('a' + (i % 26)), 1 + random.Next(2_000))).ToArray();
            await LogFixture.AppendAsync(partition, Acks.Memory, values);
        }
        await partition.FlushAsync();

        var small = new List<(long, string)>();
        for (long offset = 0; offset < partition.EndOffset;)
        {
            var part = LogFixture.ReadAll(partition, offset, maxBytes: 30_000);
            small.AddRange(part);
            offset = part[^1].Offset + 1;
        }
        foreach (int maxBytes in new[] { 1 << 20, 3 << 20 })
        {
            var large = new List<(long, string)>();
            for (long offset = 0; offset < partition.EndOffset;)
            {
                var part = LogFixture.ReadAll(partition, offset, maxBytes: maxBytes);
                Assert.InRange(part.Sum(r => r.Value.Length), 1, maxBytes);
                large.AddRange(part);
                offset = part[^1].Offset + 1;
            }
            Assert.Equal(small, large);
        }
        // From inside a batch, and a limit of records, as a fetch at any offset asks.
        Assert.Equal(small.Skip(1_001).Take(5), LogFixture.ReadAll(partition, 1_001, maxRecords: 5, maxBytes: 1 << 20));
        Assert.Equal(partition.EndOffset, small.Count);
        Assert.Null(partition.Failure);
    }
}
