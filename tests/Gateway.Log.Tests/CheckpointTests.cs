using System.Text;
using Gateway.Log.Device;
using Gateway.Storage;

namespace Gateway.Log.Tests;

/// <summary>
/// Recovery checkpoints: a restart reads only the log after the last one and verifies the rest in the background,
/// with the same result as a full scan; a damaged, missing or misplaced checkpoint only makes recovery read more.
/// </summary>
public sealed class CheckpointTests : IDisposable
{
    /// <summary>HTTP idempotency stamps use producer ids from here up (below are Kafka producers').</summary>
    private const long HttpIds = ProducerBatch.ProducerIdLimit;

    private const int Batches = 2000;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string PartitionDirectory(string root) => Path.Combine(root, "topics", "t", "0");

    /// <summary>Checkpoints every 64 KB; everything below a checkpoint is verified in the background.</summary>
    private static LogStoreOptions CheckpointOptions(string root)
    {
        var options = LogFixture.Options(root, openAtRest: false); // recovery from checkpoints at open, not at first use
        options.RecoveryCheckpointBytes = 64 * 1024;
        options.VerifyBeforeOpenBytes = 0;
        return options;
    }

    private static string Value(int i) => $"value-{i:D5}-" + new string((char)('a' + (i % 26)), 600);

    /// <summary>Appends <see cref="Batches"/> one-record batches (timestamp 10 × offset; every tenth under an Idempotency-Key).</summary>
    private static async Task WriteAsync(PartitionLog partition, int from, int count)
    {
        for (int i = from; i < from + count; i++)
        {
            using var batch = LogFixture.Batch(10L * i, Value(i));
            if (i % 10 == 0)
            {
                batch.MarkIdempotent(new IdempotencyStamp(HttpIds + i + 1, i * 7L));
            }
            await partition.AppendAsync(batch, i % 100 == 99 ? Acks.Disk : Acks.Memory);
        }
        await partition.FlushAsync();
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from).Where(f => !f.EndsWith(".tmp", StringComparison.Ordinal) && Path.GetFileName(f) != DataDirectoryLock.FileName))
        {
            // A checkpoint being written (its temp file) may come and go while the store is open. The directory's lock
            // is the live store's (a crash would have released it), and .NET's copy could not read it anyway.
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
        foreach (string dir in Directory.GetDirectories(from))
        {
            CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
        }
    }

    private static void AssertServesEverything(PartitionLog partition, int count)
    {
        Assert.Null(partition.Failure);
        Assert.Equal(count, partition.EndOffset);
        var records = LogFixture.ReadAll(partition, 0);
        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal(Value(0), records[0].Value);
        Assert.Equal(Value(count - 1), records[^1].Value);
        foreach (int offset in new[] { 1, count / 3, count / 2, count - 1 })
        {
            Assert.Equal(Value(offset), LogFixture.ReadAll(partition, offset, maxRecords: 1).Single().Value);
            Assert.Equal(offset, partition.OffsetForTimestamp(10L * offset));
        }
        Assert.True(partition.TryGetIdempotent(HttpIds + 11, out var early));
        Assert.Equal((10L, 1, 70L), (early.BaseOffset, early.Count, early.RequestHash));
        Assert.True(partition.TryGetIdempotent(HttpIds + count - 10 + 1, out var late));
        Assert.Equal(count - 10, late.BaseOffset);
    }

    [Fact]
    public async Task After_a_crash_recovery_reads_only_the_log_after_the_checkpoint_and_verifies_the_rest_in_the_background()
    {
        string crash = Path.Combine(_dir.Path, "crash");
        string live = Path.Combine(_dir.Path, "live");
        await using (var store = await LogStore.OpenAsync(CheckpointOptions(live)))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            await WriteAsync(partition, 0, Batches);
            // Everything is committed; copying the files of the open store is what a kill -9 leaves behind.
            CopyDirectory(live, crash);
        }
        Assert.True(File.Exists(Path.Combine(PartitionDirectory(crash), RecoveryCheckpoint.FileName)));

        await using var reopened = await LogStore.OpenAsync(CheckpointOptions(crash));
        var recovered = reopened.GetTopic("t").GetPartition(0);
        Assert.True(recovered.RecoveredFromAddress > recovered.BeginAddress, "recovery started at the checkpoint");
        AssertServesEverything(recovered, Batches);
        await recovered.Verified.WaitAsync(TimeSpan.FromSeconds(30));
        AssertServesEverything(recovered, Batches);
        Assert.True(recovered.IndexEntries > 100, $"the verification indexed the log below the checkpoint ({recovered.IndexEntries} entries)");
        Assert.Equal(Batches, await LogFixture.AppendAsync(recovered, Acks.Disk, "next"));
    }

    [Fact]
    public async Task A_graceful_stop_leaves_a_checkpoint_at_the_end_and_a_restart_reads_nothing_before_serving()
    {
        await using (var store = await LogStore.OpenAsync(CheckpointOptions(_dir.Path)))
        {
            await WriteAsync((await store.CreateTopicAsync("t", 1)).GetPartition(0), 0, Batches);
        }
        var checkpoint = RecoveryCheckpoint.Load(PartitionDirectory(_dir.Path));
        Assert.NotNull(checkpoint);
        Assert.Equal(Batches, checkpoint.NextOffset);
        Assert.Equal(Batches / 10, checkpoint.Batches.Count);

        await using var reopened = await LogStore.OpenAsync(CheckpointOptions(_dir.Path));
        var partition = reopened.GetTopic("t").GetPartition(0);
        Assert.Equal(checkpoint.Address, partition.RecoveredFromAddress);
        await partition.Verified.WaitAsync(TimeSpan.FromSeconds(30));
        AssertServesEverything(partition, Batches);
    }

    [Fact]
    public async Task A_damaged_batch_below_the_checkpoint_fails_the_partition_once_the_background_verification_reaches_it()
    {
        await using (var store = await LogStore.OpenAsync(CheckpointOptions(_dir.Path)))
        {
            await WriteAsync((await store.CreateTopicAsync("t", 1)).GetPartition(0), 0, Batches);
        }
        string segment = Path.Combine(PartitionDirectory(_dir.Path), "data.log.0");
        byte[] data = await File.ReadAllBytesAsync(segment);
        int at = data.AsSpan().IndexOf(Encoding.UTF8.GetBytes(Value(100)));
        Assert.True(at > 0);
        data[at + 20] ^= 0x01;
        await File.WriteAllBytesAsync(segment, data);

        await using var reopened = await LogStore.OpenAsync(CheckpointOptions(_dir.Path));
        var partition = reopened.GetTopic("t").GetPartition(0);
        await partition.Verified.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.IsType<LogCorruptedException>(partition.Failure);
        Assert.Single(reopened.Failures);
        Assert.ThrowsAny<Exception>(() => partition.Read(0, 10, 1000));
        await Assert.ThrowsAsync<LogCorruptedException>(async () => await LogFixture.AppendAsync(partition, Acks.Disk, "x"));
    }

    [Fact]
    public async Task A_damaged_checkpoint_is_ignored_and_the_log_scanned_in_full()
    {
        await using (var store = await LogStore.OpenAsync(CheckpointOptions(_dir.Path)))
        {
            await WriteAsync((await store.CreateTopicAsync("t", 1)).GetPartition(0), 0, Batches);
        }
        string file = Path.Combine(PartitionDirectory(_dir.Path), RecoveryCheckpoint.FileName);
        byte[] bytes = await File.ReadAllBytesAsync(file);
        bytes[16] ^= 0x01; // the next offset: the CRC no longer matches
        await File.WriteAllBytesAsync(file, bytes);
        Assert.Null(RecoveryCheckpoint.Load(PartitionDirectory(_dir.Path)));

        await using var reopened = await LogStore.OpenAsync(CheckpointOptions(_dir.Path));
        var partition = reopened.GetTopic("t").GetPartition(0);
        Assert.Equal(partition.BeginAddress, partition.RecoveredFromAddress);
        Assert.True(partition.Verified.IsCompleted);
        AssertServesEverything(partition, Batches);
    }

    [Fact]
    public async Task A_checkpoint_ahead_of_the_committed_log_is_ignored()
    {
        string older = Path.Combine(_dir.Path, "older");
        string live = Path.Combine(_dir.Path, "live");
        await using (var store = await LogStore.OpenAsync(CheckpointOptions(live)))
        {
            await WriteAsync((await store.CreateTopicAsync("t", 1)).GetPartition(0), 0, Batches / 2);
        }
        CopyDirectory(live, older);
        await using (var store = await LogStore.OpenAsync(CheckpointOptions(live)))
        {
            await WriteAsync(store.GetTopic("t").GetPartition(0), Batches / 2, Batches / 2);
        }
        // The older log with the newer checkpoint: it points past everything that log has committed.
        File.Copy(Path.Combine(PartitionDirectory(live), RecoveryCheckpoint.FileName), Path.Combine(PartitionDirectory(older), RecoveryCheckpoint.FileName), overwrite: true);

        await using var reopened = await LogStore.OpenAsync(CheckpointOptions(older));
        var partition = reopened.GetTopic("t").GetPartition(0);
        Assert.Equal(partition.BeginAddress, partition.RecoveredFromAddress);
        AssertServesEverything(partition, Batches / 2);
    }

    [Fact]
    public async Task Deleting_records_past_the_checkpoint_writes_a_new_one()
    {
        // One checkpoint after the first MiB: the ~1.3 MB written end well past it.
        var options = CheckpointOptions(_dir.Path);
        options.RecoveryCheckpointBytes = 1024 * 1024;
        await using (var store = await LogStore.OpenAsync(options))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            await WriteAsync(partition, 0, Batches);
            long before = RecoveryCheckpoint.Load(PartitionDirectory(_dir.Path))!.Address;
            await partition.DeleteRecordsBeforeAsync(Batches - 5);
            Assert.True(before <= partition.BeginAddress, "the deletion cut past the last checkpoint");
            // Written by the deletion itself, not by the graceful stop below: a crash now would still find it.
            var after = RecoveryCheckpoint.Load(PartitionDirectory(_dir.Path))!;
            Assert.True(after.Address > partition.BeginAddress, $"checkpoint at {after.Address}, begin address {partition.BeginAddress}");
        }
        await using var reopened = await LogStore.OpenAsync(CheckpointOptions(_dir.Path));
        var recovered = reopened.GetTopic("t").GetPartition(0);
        Assert.Null(recovered.Failure);
        Assert.Equal(Batches - 5, recovered.BeginOffset);
        Assert.Equal(Batches, recovered.EndOffset);
        Assert.Equal(Value(Batches - 5), LogFixture.ReadAll(recovered, Batches - 5).First().Value);
    }
}
