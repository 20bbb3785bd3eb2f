using Gateway.Log.Device;
using Gateway.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gateway.Log.Tests;

/// <summary>
/// The store's write journal: a write is complete only once the journal holds it, and a replay of the journal puts
/// back, in order, every write a power cut took from the files (simulated here by copying the journal as it was and
/// undoing the file writes it describes).
/// </summary>
public sealed class WriteJournalTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_replay_puts_back_the_writes_a_power_cut_took_in_order_and_stops_at_a_torn_entry()
    {
        Assert.True(DataSync.Supported, "the journal syncs with fdatasync: 64-bit Linux, where Gateway runs");
        string root = Path.Combine(_dir.Path, "data");
        string file = Path.Combine(root, "topics", "t", "0", "data.log.0");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllBytes(file, []);
        byte[] first = Bytes(1000, 1), second = Bytes(1500, 2), third = Bytes(700, 3);
        string copy = Path.Combine(_dir.Path, "journal-as-it-was");
        using (var journal = WriteJournal.Open(root, 1L << 30, journalAbove: 0, dropSynced: false, NullLogger.Instance))
        {
            // As a log writes: its tail sector again with more in it, then further on.
            await WriteAsync(journal, file, 0, first);
            await WriteAsync(journal, file, 0, second);
            await WriteAsync(journal, file, 4096, third);
            CopyDirectory(Path.Combine(root, WriteJournal.DirectoryName), copy);
        }
        Assert.Empty(Directory.GetFiles(Path.Combine(root, WriteJournal.DirectoryName))); // a graceful close leaves none

        // The power cut: the file lost what was written to it; the journal was synced.
        File.WriteAllBytes(file, new byte[100]);
        string journalDir = Path.Combine(root, WriteJournal.DirectoryName);
        CopyDirectory(copy, journalDir);
        var (entries, files) = WriteJournal.Replay(root);

        Assert.Equal((3, 1), (entries, files));
        byte[] replayed = File.ReadAllBytes(file);
        Assert.Equal(second, replayed[..1500]);
        Assert.Equal(third, replayed[4096..4796]);
        Assert.Empty(Directory.GetFiles(journalDir));

        // Torn: the last entry only half written. The ones before it are replayed; it is not (it was never acknowledged).
        File.WriteAllBytes(file, new byte[100]);
        CopyDirectory(copy, journalDir);
        string journalFile = Directory.GetFiles(journalDir).Single();
        using (var stream = new FileStream(journalFile, FileMode.Open))
        {
            stream.SetLength(stream.Length - 300);
        }
        Assert.Equal((2, 1), WriteJournal.Replay(root));
        replayed = File.ReadAllBytes(file);
        Assert.Equal(second, replayed[..1500]);
        Assert.Equal(1500, replayed.Length);
    }

    [Fact]
    public async Task A_replay_skips_the_writes_of_files_since_removed_and_a_rotation_leaves_only_the_newest_file()
    {
        Assert.True(DataSync.Supported, "the journal syncs with fdatasync: 64-bit Linux, where Gateway runs");
        string root = Path.Combine(_dir.Path, "data");
        string kept = Path.Combine(root, "a", "data.log.0");
        string removed = Path.Combine(root, "b", "data.log.0");
        Directory.CreateDirectory(Path.GetDirectoryName(kept)!);
        Directory.CreateDirectory(Path.GetDirectoryName(removed)!);
        File.WriteAllBytes(kept, []);
        File.WriteAllBytes(removed, []);
        string journalDir = Path.Combine(root, WriteJournal.DirectoryName);
        string copy = Path.Combine(_dir.Path, "journal-as-it-was");
        using (var journal = WriteJournal.Open(root, 1L << 20, journalAbove: 0, dropSynced: true, NullLogger.Instance))
        {
            // Past the rotation size: the first file's writes are synced into their files and the file removed.
            for (int i = 0; i < 6; i++)
            {
                await WriteAsync(journal, kept, i * 256L * 1024, Bytes(256 * 1024, i));
            }
            await WriteAsync(journal, removed, 0, Bytes(512, 9));
            await WriteAsync(journal, kept, 6 * 256L * 1024, Bytes(512, 10));
            await WaitUntilAsync(() => Directory.GetFiles(journalDir).Length == 1);
            CopyDirectory(journalDir, copy);
        }
        File.Delete(removed);
        CopyDirectory(copy, journalDir);

        var (entries, _) = WriteJournal.Replay(root);

        Assert.True(entries is >= 1 and <= 3, $"{entries} entries replayed: only those after the rotation are left");
        Assert.False(File.Exists(removed)); // never made again by a replay
        Assert.Equal(Bytes(512, 10), File.ReadAllBytes(kept)[(6 * 256 * 1024)..]);
    }

    [Fact]
    public async Task A_store_with_the_journal_keeps_what_it_acknowledged_across_a_close_and_deleting_a_topic_checkpoints_it()
    {
        Assert.True(DataSync.Supported, "the journal syncs with fdatasync: 64-bit Linux, where Gateway runs");
        var options = LogFixture.Options(_dir.Path);
        Assert.True(options.WriteJournal);
        options.JournalAbovePartitions = 0; // always the journal
        await using (var store = await LogStore.OpenAsync(options))
        {
            Assert.True(store.Journal!.Active);
            var topic = await store.CreateTopicAsync("t", 3);
            for (int p = 0; p < 3; p++)
            {
                await LogFixture.AppendAsync(topic.GetPartition(p), Acks.Disk, $"p{p}");
            }
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(_dir.Path, WriteJournal.DirectoryName)));
            var doomed = await store.CreateTopicAsync("gone", 1);
            await LogFixture.AppendAsync(doomed.GetPartition(0), Acks.Disk, "old");
            await store.DeleteTopicAsync("gone");
            var again = await store.CreateTopicAsync("gone", 1);
            await LogFixture.AppendAsync(again.GetPartition(0), Acks.Disk, "new");
        }
        await using (var store = await LogStore.OpenAsync(options))
        {
            var topic = store.GetTopic("t");
            Assert.Equal(["p0", "p1", "p2"], topic.Partitions.Select(p => LogFixture.ReadAll(p, 0).Single().Value));
            Assert.Equal("new", LogFixture.ReadAll(store.GetTopic("gone").GetPartition(0), 0).Single().Value);
        }
    }

    [Fact]
    public async Task The_store_journals_while_rounds_cover_many_partitions_and_goes_back_to_direct_writes_with_nothing_left_to_replay()
    {
        Assert.True(DataSync.Supported, "the journal syncs with fdatasync: 64-bit Linux, where Gateway runs");
        var options = LogFixture.Options(_dir.Path);
        string journalDir = Path.Combine(_dir.Path, WriteJournal.DirectoryName);
        await using (var store = await LogStore.OpenAsync(options))
        {
            var journal = store.Journal!;
            var topic = await store.CreateTopicAsync("t", 16);
            Assert.False(journal.Active); // one partition's own synced writes until rounds cover several
            for (int round = 0; round < 20; round++)
            {
                await Task.WhenAll(topic.Partitions.Select(p => LogFixture.AppendAsync(p, Acks.Disk, $"r{round}")));
            }
            Assert.True(journal.Active);
            Assert.Contains(Directory.GetFiles(journalDir), f => new FileInfo(f).Length > 0);

            for (int i = 0; i < 40 && journal.Active; i++)
            {
                await LogFixture.AppendAsync(topic.GetPartition(0), Acks.Disk, $"one{i}");
            }
            await WaitUntilAsync(() => !journal.Active);
            // Every file the journal described was synced before the first direct write: nothing is left to replay.
            Assert.All(Directory.GetFiles(journalDir), f => Assert.Equal(0, new FileInfo(f).Length));
            await LogFixture.AppendAsync(topic.GetPartition(1), Acks.Disk, "direct");
        }
        await using (var store = await LogStore.OpenAsync(options))
        {
            var topic = store.GetTopic("t");
            Assert.Equal(Enumerable.Range(0, 20).Select(r => $"r{r}"), LogFixture.ReadAll(topic.GetPartition(5), 0).Select(r => r.Value));
            Assert.Equal("direct", LogFixture.ReadAll(topic.GetPartition(1), 0).Last().Value);
            Assert.StartsWith("one", LogFixture.ReadAll(topic.GetPartition(0), 0).Last().Value, StringComparison.Ordinal);
        }
    }

    private static Task WriteAsync(WriteJournal journal, string file, long offset, byte[] data)
    {
        using (var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            RandomAccess.Write(handle, data, offset);
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        journal.Append(file, offset, data, failure =>
        {
            if (failure is null)
            {
                done.SetResult();
            }
            else
            {
                done.SetException(failure);
            }
        });
        return done.Task;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (int i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }
        Assert.True(condition());
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }
    }

    private static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
