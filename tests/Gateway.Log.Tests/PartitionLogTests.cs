using Gateway.Storage;

namespace Gateway.Log.Tests;

public sealed class PartitionLogTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Offsets_are_dense_and_keep_growing_across_restarts()
    {
        var expected = new List<(long, string)>();
        for (int run = 0; run < 3; run++)
        {
            await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
            var topic = run == 0 ? await store.CreateTopicAsync("t", 1) : store.GetTopic("t");
            var partition = topic.GetPartition(0);
            Assert.Equal(expected.Count, partition.EndOffset);
            Assert.Equal(expected, LogFixture.ReadAll(partition, 0));
            for (int i = 0; i < 5; i++)
            {
                string a = $"r{run}-{i}-a", b = $"r{run}-{i}-b";
                long offset = await LogFixture.AppendAsync(partition, Acks.Disk, a, b);
                Assert.Equal(expected.Count, offset);
                expected.Add((offset, a));
                expected.Add((offset + 1, b));
            }
        }
    }

    [Fact]
    public async Task Reads_at_random_offsets_return_exactly_the_records_asked_for()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, indexIntervalBytes: 256));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        for (int i = 0; i < 300; i++)
        {
            await LogFixture.AppendAsync(partition, Acks.Memory, $"v{3 * i}", $"v{(3 * i) + 1}", $"v{(3 * i) + 2}");
        }
        await partition.FlushAsync();
        Assert.Equal(900, partition.EndOffset);
        var random = new Random(42);
        for (int i = 0; i < 200; i++)
        {
            int offset = random.Next(0, 900);
            int limit = random.Next(1, 20);
            var records = LogFixture.ReadAll(partition, offset, limit);
            Assert.Equal(Math.Min(limit, 900 - offset), records.Count);
            for (int k = 0; k < records.Count; k++)
            {
                Assert.Equal((offset + k, $"v{offset + k}"), records[k]);
            }
        }
    }

    [Fact]
    public async Task The_offset_index_is_kept_sparse_and_rebuilt_on_restart()
    {
        int entries;
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, indexIntervalBytes: 1024)))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            for (int i = 0; i < 500; i++)
            {
                await LogFixture.AppendAsync(partition, Acks.Memory, new string('x', 100));
            }
            await partition.FlushAsync();
            entries = partition.IndexEntries;
            // ~180 bytes per batch entry: one index entry per five or six batches, not one per batch.
            Assert.InRange(entries, 500 / 10, 500 / 4);
        }
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, indexIntervalBytes: 1024)))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            // The partition opens at rest; its first read recovers the log and rebuilds the index.
            Assert.Equal((499L, new string('x', 100)), LogFixture.ReadAll(partition, 499).Single());
            Assert.Equal(entries, partition.IndexEntries);
        }
    }

    [Fact]
    public async Task Max_bytes_limits_an_answer_but_never_below_one_record()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await LogFixture.AppendAsync(partition, Acks.Disk, new string('x', 500), new string('y', 500), new string('z', 500));
        using (var set = partition.Read(0, 100, maxBytes: 10))
        {
            Assert.Equal(1, set.Count);
            Assert.Equal(1, set.NextOffset);
        }
        using (var set = partition.Read(0, 100, maxBytes: 1100))
        {
            Assert.Equal(2, set.Count);
            Assert.Equal(2, set.NextOffset);
        }
    }

    [Fact]
    public async Task Readers_see_only_committed_records()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, flushIntervalMs: 60_000));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        long offset = await LogFixture.AppendAsync(partition, Acks.Memory, "not yet");
        Assert.Equal(0, offset);
        Assert.Equal(0, partition.EndOffset);
        using (var set = partition.Read(0, 10, 1000))
        {
            Assert.Equal(0, set.Count);
        }
        Assert.Throws<OffsetOutOfRangeException>(() => partition.Read(1, 10, 1000));

        await partition.FlushAsync();
        Assert.Equal(1, partition.EndOffset);
        Assert.Equal([(0L, "not yet")], LogFixture.ReadAll(partition, 0));
    }

    [Fact]
    public async Task A_durable_append_returns_only_once_committed()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, flushIntervalMs: 60_000));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await LogFixture.AppendAsync(partition, Acks.Disk, "durable");
        Assert.Equal(1, partition.EndOffset);
    }

    [Fact]
    public async Task Concurrent_durable_appends_get_distinct_dense_offsets()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        var offsets = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => LogFixture.AppendAsync(partition, Acks.Disk, $"c{i}"))));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => (long)i), offsets.Order());
        var records = LogFixture.ReadAll(partition, 0);
        Assert.Equal(200, records.Count);
        foreach (var (offset, value) in records)
        {
            Assert.Equal($"c{Array.IndexOf(offsets, offset)}", value);
        }
    }

    [Fact]
    public async Task A_batch_too_large_for_a_page_is_refused_and_appends_nothing()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await LogFixture.AppendAsync(partition, Acks.Disk, "before");
        using var batch = LogFixture.Batch(Enumerable.Range(0, 100).Select(_ => new string('x', 1000)).ToArray());
        await Assert.ThrowsAsync<BatchTooLargeException>(async () => await partition.AppendAsync(batch, Acks.Disk));
        await LogFixture.AppendAsync(partition, Acks.Disk, "after");
        Assert.Equal([(0L, "before"), (1L, "after")], LogFixture.ReadAll(partition, 0));
    }

    [Fact]
    public async Task An_appended_batch_has_given_its_buffer_back_before_the_commit()
    {
        // An hour's flush interval: the memory-acknowledged append returns long before any commit.
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, flushIntervalMs: 3_600_000));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        using var batch = LogFixture.Batch("a", "b");
        Assert.Equal(0, await partition.AppendAsync(batch, Acks.Memory));
        Assert.Equal(0, partition.EndOffset);

        // The pool has the buffer back: the batch cannot go in twice, and what it told about itself stays readable.
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await partition.AppendAsync(batch, Acks.Memory));
        Assert.Equal(2, batch.Count);
        Assert.True(batch.SizeInBytes > 61);
        await partition.FlushAsync();
        Assert.Equal([(0L, "a"), (1L, "b")], LogFixture.ReadAll(partition, 0));
    }

    [Fact]
    public async Task Commits_issued_while_others_are_under_way_are_published_in_order()
    {
        // No commit but the ones issued here: the flush interval is an hour and nothing waits at the tail.
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, flushIntervalMs: 3_600_000));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        long lowest = partition.EndOffset;
        var sinking = new List<(long Before, long After)>();
        using var watching = new CancellationTokenSource();
        var watcher = Task.Run(() =>
        {
            while (!watching.IsCancellationRequested)
            {
                long end = partition.EndOffset;
                if (end < lowest)
                {
                    sinking.Add((lowest, end));
                }
                lowest = Math.Max(lowest, end);
            }
        });
        var commits = new List<Task>();
        for (int i = 0; i < 300; i++)
        {
            await LogFixture.AppendAsync(partition, Acks.Memory, $"r{i}");
            long covered = i + 1;
            // Issued before the last one ended; each may finish only once its own records are published.
            commits.Add(partition.CommitAsync().ContinueWith(_ => Assert.True(partition.EndOffset >= covered), TaskScheduler.Default));
        }
        await Task.WhenAll(commits);
        await watching.CancelAsync();
        await watcher;
        Assert.Empty(sinking);
        Assert.Equal(300, partition.EndOffset);
        Assert.Equal(300, LogFixture.ReadAll(partition, 0).Count);
    }

    [Fact]
    public async Task A_flush_that_adds_nothing_to_a_commit_under_way_waits_for_that_commit()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, flushIntervalMs: 3_600_000));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        for (int i = 0; i < 50; i++)
        {
            await LogFixture.AppendAsync(partition, Acks.Memory, $"r{i}");
            // The commit of the record is under way when the flush asks for another, which has nothing new to write.
            var underWay = partition.CommitAsync();
            await partition.FlushAsync();
            Assert.Equal(i + 1, partition.EndOffset);
            await underWay;
        }
    }

    [Fact]
    public async Task A_conditional_append_succeeds_only_at_the_expected_end()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        using (var first = LogFixture.Batch("a"))
        {
            Assert.Equal(0, await partition.AppendAsync(first, Acks.Disk, expectedEndOffset: 0));
        }
        using var stale = LogFixture.Batch("b");
        var mismatch = await Assert.ThrowsAsync<OffsetMismatchException>(async () => await partition.AppendAsync(stale, Acks.Disk, expectedEndOffset: 0));
        Assert.Equal(1, mismatch.EndOffset);
        Assert.Equal(1, partition.EndOffset);
    }

    [Fact]
    public async Task A_waiting_reader_is_woken_by_the_commit_that_passes_it()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        var waiting = partition.WaitForRecordAsync(0, CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        await LogFixture.AppendAsync(partition, Acks.Memory, "wake");
        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_waiting_reader_makes_memory_appends_commit_at_once(bool sharedSignal)
    {
        // An hour's flush interval: without a reader, a memory-acknowledged record stays uncommitted (invisible).
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, flushIntervalMs: 3_600_000));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await LogFixture.AppendAsync(partition, Acks.Memory, "unwatched");
        await Task.Delay(100);
        Assert.Equal(0, partition.EndOffset);

        // A reader at the tail: the next append is committed without waiting for the interval.
        var waiting = sharedSignal ? partition.NextCommit(0) : partition.WaitForRecordAsync(0, CancellationToken.None).AsTask();
        Assert.False(waiting.IsCompleted);
        await LogFixture.AppendAsync(partition, Acks.Memory, "watched");
        await waiting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(2, partition.EndOffset);
        Assert.True(partition.NextCommit(1).IsCompleted); // readable at once: nothing to wait for

        // The commit consumed the reader's wish: with nobody waiting, appends gather again.
        await LogFixture.AppendAsync(partition, Acks.Memory, "unwatched again");
        await Task.Delay(100);
        Assert.Equal(2, partition.EndOffset);
    }

    [Fact]
    public async Task A_waiting_reader_is_released_when_the_topic_is_deleted()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        var waiting = partition.WaitForRecordAsync(0, CancellationToken.None).AsTask();
        await store.DeleteTopicAsync("t");
        Assert.False(await waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, "topics", "t")));
    }

    [Fact]
    public async Task Timestamp_lookup_finds_the_first_record_at_or_after_it()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, indexIntervalBytes: 64));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        for (int i = 0; i < 50; i++)
        {
            using var batch = LogFixture.Batch(1000 + (i * 10), $"t{i}");
            await partition.AppendAsync(batch, Acks.Memory);
        }
        await partition.FlushAsync();
        Assert.Equal(0, partition.OffsetForTimestamp(0));
        Assert.Equal(0, partition.OffsetForTimestamp(1000));
        Assert.Equal(1, partition.OffsetForTimestamp(1001));
        Assert.Equal(25, partition.OffsetForTimestamp(1250));
        Assert.Equal(50, partition.OffsetForTimestamp(99_999));
    }

    [Fact]
    public async Task Deleting_records_advances_the_begin_offset_durably()
    {
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path)))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            for (int i = 0; i < 10; i++)
            {
                await LogFixture.AppendAsync(partition, Acks.Memory, $"a{i}", $"b{i}");
            }
            await partition.FlushAsync();
            Assert.Equal(7, await partition.DeleteRecordsBeforeAsync(7));
            Assert.Equal(7, partition.BeginOffset);
            var range = Assert.Throws<OffsetOutOfRangeException>(() => partition.Read(6, 10, 1000));
            Assert.Equal(7, range.BeginOffset);
            Assert.Equal((7L, "b3"), LogFixture.ReadAll(partition, 7)[0]);
        }
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path)))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.Equal(7, partition.BeginOffset);
            Assert.Equal(20, partition.EndOffset);
            Assert.Equal(13, LogFixture.ReadAll(partition, 7).Count);
            Assert.Equal(20, await partition.DeleteRecordsBeforeAsync(20));
        }
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path)))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.Equal(20, partition.BeginOffset);
            Assert.Equal(20, partition.EndOffset);
            Assert.Equal(20, await LogFixture.AppendAsync(partition, Acks.Disk, "next"));
        }
    }

    [Fact]
    public async Task The_begin_offset_never_moves_back_and_retention_ignores_uncommitted_records()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(10_000_000));
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path, flushIntervalMs: 60_000, indexIntervalBytes: 1), time);
        var partition = (await store.CreateTopicAsync("t", 1, new TopicConfig { RetentionMs = 1000 })).GetPartition(0);
        for (int i = 0; i < 10; i++)
        {
            await LogFixture.AppendAsync(partition, Acks.Disk, $"d{i}");
        }
        Assert.Equal(7, await partition.DeleteRecordsBeforeAsync(7));
        Assert.Equal(7, await partition.DeleteRecordsBeforeAsync(3));
        Assert.Equal(7, partition.BeginOffset);

        // Old records appended but not committed yet: retention may not cut past the high watermark.
        for (int i = 0; i < 5; i++)
        {
            await LogFixture.AppendAsync(partition, Acks.Memory, $"m{i}");
        }
        await store.ApplyRetentionAsync();
        Assert.Equal(10, partition.BeginOffset); // the cut stopped at the records committed when it was decided
        Assert.Equal(5, LogFixture.ReadAll(partition, 10).Count); // the truncation's commit made the rest visible
    }

    [Fact]
    public async Task Topics_partitions_and_settings_reopen_after_restart()
    {
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path)))
        {
            await store.CreateTopicAsync("orders", 3, new TopicConfig { RetentionMs = 60_000, Acks = Acks.Memory });
            await store.UpdateTopicAsync("orders", null, 5);
            await LogFixture.AppendAsync(store.GetTopic("orders").GetPartition(4), Acks.Disk, "p4");
        }
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path)))
        {
            var topic = store.GetTopic("orders");
            Assert.Equal(5, topic.PartitionCount);
            Assert.Equal(60_000, topic.Config.RetentionMs);
            Assert.Equal(Acks.Memory, topic.Config.Acks);
            Assert.Equal([(0L, "p4")], LogFixture.ReadAll(topic.GetPartition(4), 0));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.UpdateTopicAsync("orders", null, 2));
        }
    }

    [Fact]
    public async Task A_recreated_topic_starts_empty_at_offset_zero()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await LogFixture.AppendAsync(partition, Acks.Disk, "old");
        await store.DeleteTopicAsync("t");
        Assert.Throws<TopicNotFoundException>(() => store.GetTopic("t"));
        await Assert.ThrowsAsync<TopicExistsException>(async () =>
        {
            await store.CreateTopicAsync("u", 1);
            await store.CreateTopicAsync("u", 1);
        });
        var again = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        Assert.Equal(0, again.EndOffset);
        Assert.Equal(0, await LogFixture.AppendAsync(again, Acks.Disk, "new"));
        Assert.Equal([(0L, "new")], LogFixture.ReadAll(again, 0));
    }
}
