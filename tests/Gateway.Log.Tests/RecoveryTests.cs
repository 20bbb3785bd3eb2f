using System.Text;
using Gateway.Log.Device;
using Gateway.Storage;

namespace Gateway.Log.Tests;

/// <summary>What a reopened log does with damage: a torn tail is cut, anything else is reported and never served as empty.</summary>
public sealed class RecoveryTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    // Recovery at open is what these tests are about: a store opening partitions at rest recovers each at its first
    // use instead (RestTests covers damage found then).
    private LogStoreOptions Options() => LogFixture.Options(_dir.Path, openAtRest: false);

    private string DataFile => Path.Combine(_dir.Path, "topics", "t", "0", "data.log.0");

    private async Task WriteAsync(int count, string prefix = "value")
    {
        await using var store = await LogStore.OpenAsync(Options());
        var topic = store.TryGetTopic("t", out var existing) ? existing : await store.CreateTopicAsync("t", 1);
        for (int i = 0; i < count; i++)
        {
            await LogFixture.AppendAsync(topic.GetPartition(0), Acks.Disk, $"{prefix}-{i:D4}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_flipped_byte_in_the_committed_range_fails_the_partition_instead_of_hiding_records(bool withCheckpoint)
    {
        await WriteAsync(50);
        byte[] data = await File.ReadAllBytesAsync(DataFile);
        int at = IndexOf(data, "value-0020"u8);
        Assert.True(at > 0);
        data[at + 3] ^= 0x01;
        await File.WriteAllBytesAsync(DataFile, data);
        DropCheckpointUnless(withCheckpoint);

        await using var store = await LogStore.OpenAsync(Options());
        var partition = store.GetTopic("t").GetPartition(0);
        Assert.NotNull(partition.Failure);
        Assert.Single(store.Failures);
        Assert.ThrowsAny<Exception>(() => partition.Read(0, 10, 1000));
        await Assert.ThrowsAsync<LogCorruptedException>(async () => await LogFixture.AppendAsync(partition, Acks.Disk, "x"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_data_file_cut_short_inside_the_committed_range_is_reported(bool withCheckpoint)
    {
        await WriteAsync(50);
        byte[] data = await File.ReadAllBytesAsync(DataFile);
        int at = IndexOf(data, "value-0030"u8);
        await File.WriteAllBytesAsync(DataFile, data[..at]);
        DropCheckpointUnless(withCheckpoint);

        await using var store = await LogStore.OpenAsync(Options());
        Assert.NotNull(store.GetTopic("t").GetPartition(0).Failure);
        Assert.NotEmpty(store.Failures);
    }

    /// <summary>Reopens the store: partition t/0 must be failed and refuse appends.</summary>
    private async Task AssertReopenedPartitionRefusedAsync()
    {
        await using var store = await LogStore.OpenAsync(Options());
        var partition = store.GetTopic("t").GetPartition(0);
        Assert.NotNull(partition.Failure);
        await Assert.ThrowsAsync<LogCorruptedException>(async () => await LogFixture.AppendAsync(partition, Acks.Disk, "x"));
    }

    // With the checkpoint a graceful stop leaves, recovery checks the segment files and verifies below it; without,
    // it scans everything: both must find the damage.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_missing_segment_file_is_reported_not_taken_for_retention(bool withCheckpoint)
    {
        await WriteAsync(50);
        File.Delete(DataFile);
        DropCheckpointUnless(withCheckpoint);

        await AssertReopenedPartitionRefusedAsync();
    }

    private void DropCheckpointUnless(bool keep)
    {
        string checkpoint = Path.Combine(_dir.Path, "topics", "t", "0", RecoveryCheckpoint.FileName);
        Assert.True(File.Exists(checkpoint), "a graceful stop leaves a recovery checkpoint");
        if (!keep)
        {
            File.Delete(checkpoint);
        }
    }

    [Fact]
    public async Task A_listed_partition_whose_folder_vanished_is_reported_not_recreated_empty()
    {
        await WriteAsync(10);
        Directory.Delete(Path.Combine(_dir.Path, "topics", "t", "0"), recursive: true);
        await using var store = await LogStore.OpenAsync(Options());
        Assert.NotNull(store.GetTopic("t").GetPartition(0).Failure);
    }

    [Fact]
    public async Task Growing_a_topic_over_a_folder_left_by_an_unfinished_grow_starts_the_partition_clean()
    {
        await WriteAsync(3);
        string leftover = Path.Combine(_dir.Path, "topics", "t", "1");
        Directory.CreateDirectory(leftover);
        await File.WriteAllBytesAsync(Path.Combine(leftover, "data.log.0"), new byte[4096]);
        await using var store = await LogStore.OpenAsync(Options());
        var grown = await store.UpdateTopicAsync("t", null, 2);
        Assert.Null(grown.GetPartition(1).Failure);
        Assert.Equal(0, await LogFixture.AppendAsync(grown.GetPartition(1), Acks.Disk, "first"));
    }

    [Fact]
    public async Task A_new_partition_is_committed_before_anything_is_appended()
    {
        await WriteAsync(0);
        Assert.Equal(512, new FileInfo(Path.Combine(_dir.Path, "topics", "t", "0", "commit.record")).Length);
    }

    [Fact]
    public async Task A_missing_commit_record_is_reported_not_started_empty()
    {
        await WriteAsync(50);
        string commit = Path.Combine(_dir.Path, "topics", "t", "0", "commit.record");
        Assert.True(File.Exists(commit), "a partition is committed once it exists, appended to or not");
        File.Delete(commit);

        await AssertReopenedPartitionRefusedAsync();
    }

    [Fact]
    public async Task A_partition_committed_in_the_older_commit_files_opens_and_moves_to_the_commit_record()
    {
        await WriteAsync(20);
        // The layout before the commit record: FasterLog's own commit file, log-commits/commit.N.0 = length + metadata.
        string partitionDir = Path.Combine(_dir.Path, "topics", "t", "0");
        string record = Path.Combine(partitionDir, "commit.record");
        byte[] bytes = await File.ReadAllBytesAsync(record);
        int length = BitConverter.ToInt32(bytes, 16);
        long commitNum = BitConverter.ToInt64(bytes, 8);
        string legacy = Path.Combine(partitionDir, "log-commits");
        Directory.CreateDirectory(legacy);
        await File.WriteAllBytesAsync(Path.Combine(legacy, $"commit.{commitNum}.0"), [.. BitConverter.GetBytes(length), .. bytes.AsSpan(20, length)]);
        File.Delete(record);

        await using (var store = await LogStore.OpenAsync(Options()))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.Null(partition.Failure);
            Assert.Equal(20, partition.EndOffset);
            Assert.Equal(20, await LogFixture.AppendAsync(partition, Acks.Disk, "after"));
        }
        Assert.False(Directory.Exists(legacy));
        await using var reopened = await LogStore.OpenAsync(Options());
        Assert.Equal(21, reopened.GetTopic("t").GetPartition(0).EndOffset);
    }

    [Theory]
    [InlineData(4)] // the checksum
    [InlineData(8)] // the commit number
    [InlineData(20)] // the first byte of FasterLog's metadata
    [InlineData(40)] // inside it: the committed addresses
    public async Task A_damaged_commit_record_is_reported_not_rolled_back(int at)
    {
        await WriteAsync(50);
        string commit = Path.Combine(_dir.Path, "topics", "t", "0", "commit.record");
        byte[] record = await File.ReadAllBytesAsync(commit);
        record[at] ^= 0x40;
        await File.WriteAllBytesAsync(commit, record);

        await AssertReopenedPartitionRefusedAsync();
    }

    [Fact]
    public async Task Records_all_deleted_by_delete_records_reopen_empty_at_the_right_offset()
    {
        await WriteAsync(30);
        await using (var store = await LogStore.OpenAsync(Options()))
        {
            await store.GetTopic("t").GetPartition(0).DeleteRecordsBeforeAsync(30);
        }
        await using var reopened = await LogStore.OpenAsync(Options());
        var partition = reopened.GetTopic("t").GetPartition(0);
        Assert.Null(partition.Failure);
        Assert.Equal(30, partition.BeginOffset);
        Assert.Equal(30, partition.EndOffset);
        Assert.Equal(30, await LogFixture.AppendAsync(partition, Acks.Disk, "next"));
    }

    [Fact]
    public async Task A_torn_tail_past_the_last_commit_is_cut_and_offsets_continue_densely()
    {
        await WriteAsync(20);
        // A write the crash interrupted: bytes past the committed tail that no commit covers.
        await using (var file = new FileStream(DataFile, FileMode.Open, FileAccess.Write))
        {
            file.Seek(0, SeekOrigin.End);
            file.Write(Encoding.UTF8.GetBytes(new string('\u0007', 700)));
        }
        await WriteAsync(5, "after");

        await using var store = await LogStore.OpenAsync(Options());
        var partition = store.GetTopic("t").GetPartition(0);
        Assert.Null(partition.Failure);
        var records = LogFixture.ReadAll(partition, 0);
        Assert.Equal(25, records.Count);
        Assert.Equal(Enumerable.Range(0, 25).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal("value-0019", records[19].Value);
        Assert.Equal("after-0000", records[20].Value);
    }

    [Fact]
    public async Task A_log_written_ahead_of_its_tail_reopens_with_every_record_and_goes_on_from_its_end()
    {
        // Over 4 MB of small durable appends: the partition's files are then written ahead with zeros (where writes
        // bypass the page cache: without the write journal), past the tail, into segments no commit has reached yet.
        string value = new('v', 1000);
        var options = Options();
        options.WriteJournal = false;
        await using (var store = await LogStore.OpenAsync(options))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            for (int i = 0; i < 5000; i += 50)
            {
                await Task.WhenAll(Enumerable.Range(i, 50).Select(n => LogFixture.AppendAsync(partition, Acks.Disk, $"{n:D5}{value}")));
            }
            Assert.Equal(5000, partition.EndOffset);
        }
        long tailSegment = Directory.GetFiles(Path.GetDirectoryName(DataFile)!, "data.log.*").Max(f => long.Parse(Path.GetExtension(f)[1..]));

        await using (var store = await LogStore.OpenAsync(options))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.Null(partition.Failure);
            Assert.Equal(5000, partition.EndOffset);
            Assert.Equal(5000, await LogFixture.AppendAsync(partition, Acks.Disk, "next"));
            var records = LogFixture.ReadAll(partition, 0);
            Assert.Equal(Enumerable.Range(0, 5001).Select(i => (long)i), records.Select(r => r.Offset));
            Assert.Equal(Enumerable.Range(0, 5000).Select(n => $"{n:D5}{value}").Append("next"), records.Select(r => r.Value));
            if (PageCache.CanBypass && new DriveInfo(_dir.Path).DriveFormat != "tmpfs")
            {
                Assert.True(tailSegment > (partition.SizeBytes >> 20), "segments past the tail's are written ahead");
            }
        }
    }

    private string CommitFile => Path.Combine(_dir.Path, "topics", "t", "0", "commit.record");

    /// <summary>The tail address the commit record names.</summary>
    private long RecordedTail()
    {
        using var record = new CommitRecord(Path.GetDirectoryName(CommitFile)!);
        Assert.True(record.TryReadRecovery(out var info));
        return info.UntilAddress;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Records_on_disk_past_an_older_commit_record_are_recovered(bool withCheckpoint)
    {
        // The record is written through the page cache: a power cut can leave an older one than the synced data.
        await WriteAsync(20);
        byte[] older = await File.ReadAllBytesAsync(CommitFile);
        await WriteAsync(30, "later");
        await File.WriteAllBytesAsync(CommitFile, older);
        DropCheckpointUnless(withCheckpoint);

        for (int reopen = 0; reopen < 2; reopen++)
        {
            await using var store = await LogStore.OpenAsync(Options());
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.Null(partition.Failure);
            Assert.Equal(50 + reopen, partition.EndOffset);
            var records = LogFixture.ReadAll(partition, 0);
            Assert.Equal(Enumerable.Range(0, 50 + reopen).Select(i => (long)i), records.Select(r => r.Offset));
            Assert.Equal("value-0019", records[19].Value);
            Assert.Equal("later-0029", records[49].Value);
            Assert.Equal(50 + reopen, await LogFixture.AppendAsync(partition, Acks.Disk, "next"));
        }
    }

    [Fact]
    public async Task Records_past_one_that_never_reached_the_disk_are_not_recovered_and_are_cut_off()
    {
        await WriteAsync(20);
        byte[] older = await File.ReadAllBytesAsync(CommitFile);
        long hole = RecordedTail();
        // Entries that end on a sector's end: writing one at the hole then leaves the next one's bytes as they were.
        string early = PrefixEndingASector(hole, "early"), later = "later" + early[5..];
        await WriteAsync(10, early);
        // A power cut: offset 20's entry never reached the disk, the ones after it did, the record is the older one.
        await File.WriteAllBytesAsync(CommitFile, older);
        using (var file = File.OpenHandle(DataFile, FileMode.Open, FileAccess.Write))
        {
            RandomAccess.Write(file, new byte[12], hole);
        }

        await using (var store = await LogStore.OpenAsync(Options()))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.Null(partition.Failure);
            Assert.Equal(20, partition.EndOffset);
            // The entry that replaces offset 20 takes the place, and has the size, of the lost one.
            Assert.Equal(20, await LogFixture.AppendAsync(partition, Acks.Disk, $"{later}-0000"));
        }
        Assert.Equal(-1, IndexOf(await File.ReadAllBytesAsync(DataFile), Encoding.UTF8.GetBytes($"{early}-0001")));

        // Another power cut with the older record. Had the entries of offsets 21 to 29 been left past the new offset
        // 20, they would check and continue its offsets: records no one appended since.
        await File.WriteAllBytesAsync(CommitFile, older);
        await using (var store = await LogStore.OpenAsync(Options()))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.Null(partition.Failure);
            var records = LogFixture.ReadAll(partition, 0);
            Assert.Equal(21, records.Count);
            Assert.Equal($"{later}-0000", records[20].Value);
        }
    }

    /// <summary>A prefix for <see cref="WriteAsync"/> whose one-record entries, the first at <paramref name="address"/>, end on a 512-byte sector's end.</summary>
    private static string PrefixEndingASector(long address, string prefix)
    {
        for (int extra = 0; ; extra++)
        {
            string padded = prefix + new string('x', extra);
            using var batch = LogFixture.Batch($"{padded}-0000");
            batch.Seal();
            long entry = LogTail.HeaderSize + ((batch.SizeInBytes + 3) & ~3); // FasterLog entries are 4-byte aligned
            if ((address + entry) % 512 == 0)
            {
                return padded;
            }
        }
    }

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle);
}
