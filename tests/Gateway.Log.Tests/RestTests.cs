using Gateway.Storage;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Log.Tests;

/// <summary>
/// Partitions at rest: an idle partition's log closes and opens again at its next use, a restart opens partitions at
/// rest from their markers, the memory budget closes the least recently used; nothing read or written changes.
/// </summary>
public sealed class RestTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(10_000_000));

    public void Dispose() => _dir.Dispose();

    private string PartitionDirectory(int partition = 0) => Path.Combine(_dir.Path, "topics", "t", partition.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Partitions close only when the test says (RestIdlePartitions with an idle time of 0).</summary>
    private LogStoreOptions Options(long logMemoryBytes = 1L << 40)
    {
        var options = LogFixture.Options(_dir.Path);
        options.PartitionIdleMs = 600_000;
        options.LogMemoryBytes = logMemoryBytes;
        return options;
    }

    private static Task RestAsync(LogStore store)
    {
        store.RestIdlePartitions(idleMs: 0);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task An_idle_partition_closes_its_log_and_the_next_read_or_append_opens_it_with_nothing_changed()
    {
        await using var store = await LogStore.OpenAsync(Options(), _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        for (int i = 0; i < 20; i++)
        {
            await LogFixture.AppendAsync(partition, i % 2 == 0 ? Acks.Disk : Acks.Memory, $"v{i}");
        }
        await partition.FlushAsync();
        long size = partition.SizeBytes;
        long? oldest = partition.OldestTimestamp();
        await RestAsync(store);

        Assert.False(partition.IsOpen);
        Assert.Equal(0, store.OpenPartitions);
        Assert.True(File.Exists(Path.Combine(PartitionDirectory(), RestMarker.FileName)));
        Assert.Equal((0L, 20L, size, oldest), (partition.BeginOffset, partition.EndOffset, partition.SizeBytes, partition.OldestTimestamp()));
        Assert.Empty(LogFixture.ReadAll(partition, 20)); // a read at the end needs no log
        Assert.Equal(20, partition.OffsetForTimestamp(2_000)); // nor a timestamp past every record
        Assert.False(partition.IsOpen);

        Assert.Equal([.. Enumerable.Range(0, 20).Select(i => ((long)i, $"v{i}"))], LogFixture.ReadAll(partition, 0));
        Assert.True(partition.IsOpen);
        Assert.False(File.Exists(Path.Combine(PartitionDirectory(), RestMarker.FileName)), "an open log has no marker");

        await RestAsync(store);
        Assert.False(partition.IsOpen);
        Assert.Equal(20, await LogFixture.AppendAsync(partition, Acks.Disk, "after"));
        Assert.True(partition.IsOpen);
        Assert.Equal((20L, "after"), LogFixture.ReadAll(partition, 20).Single());
        Assert.Equal(0, partition.OffsetForTimestamp(0));
    }

    [Fact]
    public async Task A_restart_opens_partitions_at_rest_and_recovers_each_at_its_first_use()
    {
        var stamp = new IdempotencyStamp(ProducerBatch.ProducerIdLimit + 7, 99);
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var topic = await store.CreateTopicAsync("t", 3);
            for (int p = 0; p < 3; p++)
            {
                for (int i = 0; i < 5 * (p + 1); i++)
                {
                    await LogFixture.AppendAsync(topic.GetPartition(p), Acks.Disk, $"p{p}-{i}");
                }
            }
            using var stamped = LogFixture.Batch("stamped");
            stamped.MarkIdempotent(stamp);
            Assert.Equal(15, await topic.GetPartition(2).AppendAsync(stamped, Acks.Disk));
        }

        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var topic = store.GetTopic("t");
            Assert.Equal(0, store.OpenPartitions);
            Assert.Equal([5L, 10L, 16L], topic.Partitions.Select(p => p.EndOffset));
            Assert.All(topic.Partitions, p => Assert.Equal(1000, p.OldestTimestamp()));

            // The retried request is answered from its first attempt: the partition recovers its keys first.
            using var retried = LogFixture.Batch("stamped");
            retried.MarkIdempotent(stamp);
            Assert.Equal(15, await topic.GetPartition(2).AppendAsync(retried, Acks.Disk));
            Assert.Equal(16, topic.GetPartition(2).EndOffset);
            Assert.Equal((4L, "p0-4"), LogFixture.ReadAll(topic.GetPartition(0), 4).Single());
            Assert.Equal(2, store.OpenPartitions);
            Assert.Equal(5, await LogFixture.AppendAsync(topic.GetPartition(0), Acks.Disk, "p0-5"));
        }

        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            Assert.Equal([6L, 10L, 16L], store.GetTopic("t").Partitions.Select(p => p.EndOffset));
            Assert.Equal((5L, "p0-5"), LogFixture.ReadAll(store.GetTopic("t").GetPartition(0), 5).Single());
        }
    }

    [Fact]
    public async Task A_marker_that_does_not_match_the_commit_record_is_ignored_and_the_partition_recovered()
    {
        byte[] stale;
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            await LogFixture.AppendAsync(partition, Acks.Disk, "a", "b");
            await RestAsync(store);
            stale = await File.ReadAllBytesAsync(Path.Combine(PartitionDirectory(), RestMarker.FileName));
            await LogFixture.AppendAsync(partition, Acks.Disk, "c");
        }
        // As if the marker had survived the later write (it cannot: it is removed before the log opens).
        await File.WriteAllBytesAsync(Path.Combine(PartitionDirectory(), RestMarker.FileName), stale);

        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.True(partition.IsOpen, "recovered at open");
            Assert.Equal(3, partition.EndOffset);
            Assert.Equal(["a", "b", "c"], LogFixture.ReadAll(partition, 0).Select(r => r.Value));
        }
    }

    [Fact]
    public async Task Damage_to_a_partition_at_rest_fails_it_at_its_first_read_and_nothing_damaged_is_served()
    {
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            for (int i = 0; i < 50; i++)
            {
                await LogFixture.AppendAsync(partition, Acks.Disk, $"value-{i:D4}");
            }
        }
        string data = Path.Combine(PartitionDirectory(), "data.log.0");
        byte[] bytes = await File.ReadAllBytesAsync(data);
        int at = bytes.AsSpan().IndexOf("value-0020"u8);
        bytes[at + 3] ^= 0x01;
        await File.WriteAllBytesAsync(data, bytes);

        await using (var store = await LogStore.OpenAsync(Options(), _time, startVerification: false))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.False(partition.IsOpen);
            Assert.Null(partition.Failure); // not verified yet (the server lets verification start once it serves)
            Assert.ThrowsAny<Exception>(() => LogFixture.ReadAll(partition, 0));
            Assert.NotNull(partition.Failure);
            Assert.Single(store.Failures);
            await Assert.ThrowsAsync<LogCorruptedException>(async () => await LogFixture.AppendAsync(partition, Acks.Disk, "x"));
        }

        // Never read: the verification of the partitions that started at rest finds it from the files.
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            var deadline = System.Diagnostics.Stopwatch.StartNew();
            while (partition.Failure is null && deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(20);
            }
            Assert.Contains("CRC", partition.Failure?.Message, StringComparison.Ordinal);
            Assert.Single(store.Failures);
        }
    }

    [Fact]
    public async Task Partitions_at_rest_that_are_intact_pass_the_verification_and_stay_at_rest()
    {
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var topic = await store.CreateTopicAsync("t", 4);
            for (int i = 0; i < 200; i++)
            {
                await LogFixture.AppendAsync(topic.GetPartition(i % 3), i % 2 == 0 ? Acks.Disk : Acks.Memory, $"value-{i:D4}");
            }
            await store.GetTopic("t").GetPartition(2).DeleteRecordsBeforeAsync(10);
        }
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            await Task.Delay(500);
            Assert.Empty(store.Failures);
            Assert.Equal(0, store.OpenPartitions);
            Assert.Equal([67L, 67L, 66L, 0L], store.GetTopic("t").Partitions.Select(p => p.EndOffset));
            Assert.Equal(10, store.GetTopic("t").GetPartition(2).BeginOffset);
        }
    }

    [Fact]
    public async Task A_segment_file_missing_under_a_marker_is_reported_at_open()
    {
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            await LogFixture.AppendAsync(partition, Acks.Disk, "a");
        }
        File.Delete(Path.Combine(PartitionDirectory(), "data.log.0"));
        await using var reopened = await LogStore.OpenAsync(Options(), _time);
        Assert.NotNull(reopened.GetTopic("t").GetPartition(0).Failure);
    }

    [Fact]
    public async Task The_memory_budget_closes_the_least_recently_used_idle_partitions()
    {
        var options = Options();
        // Two open logs of two pages each (a log holds its first two pages while its tail is on the first); nothing is
        // idle long enough, only the budget closes logs.
        options.LogMemoryBytes = 2 * (2L << options.PageSizeBits);
        await using var store = await LogStore.OpenAsync(options, _time);
        var topic = await store.CreateTopicAsync("t", 5);
        for (int p = 0; p < 5; p++)
        {
            await LogFixture.AppendAsync(topic.GetPartition(p), Acks.Disk, $"p{p}");
            await Task.Delay(2);
        }
        store.RestIdlePartitions();
        Assert.Equal([false, false, false, true, true], topic.Partitions.Select(p => p.IsOpen));
        Assert.Equal(["p0", "p1", "p2", "p3", "p4"], topic.Partitions.Select(p => LogFixture.ReadAll(p, 0).Single().Value));
    }

    [Fact]
    public async Task Retention_reaches_partitions_at_rest_and_opens_only_those_with_something_to_delete()
    {
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var topic = await store.CreateTopicAsync("t", 2, new TopicConfig { RetentionMs = 60_000 });
            using (var old = LogFixture.Batch(_time.GetUtcNow().ToUnixTimeMilliseconds(), "old"))
            {
                await topic.GetPartition(0).AppendAsync(old, Acks.Disk);
            }
            using var fresh = LogFixture.Batch(_time.GetUtcNow().ToUnixTimeMilliseconds() + 120_000, "fresh");
            await topic.GetPartition(1).AppendAsync(fresh, Acks.Disk);
        }
        _time.Advance(TimeSpan.FromMinutes(2));
        await using (var store = await LogStore.OpenAsync(Options(), _time))
        {
            var topic = store.GetTopic("t");
            Assert.Equal(0, store.OpenPartitions);
            // Retention may need a round to finish the recovery it started (verification); two rounds do it.
            await store.ApplyRetentionAsync();
            await store.ApplyRetentionAsync();
            Assert.Equal(1, topic.GetPartition(0).BeginOffset);
            Assert.Equal(0, topic.GetPartition(1).BeginOffset);
            Assert.False(topic.GetPartition(1).IsOpen, "nothing of partition 1 is old enough: its log stays closed");
        }
    }
}
