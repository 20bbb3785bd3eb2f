using Gateway.Storage;

namespace Gateway.Log.Tests;

/// <summary>
/// A partition keeps the page size its log was made with (<c>log.layout</c>): a log read with other pages than it was
/// written with is misread, so the store's page size applies only to partitions it makes.
/// </summary>
public sealed class LogLayoutTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Layout => Path.Combine(_dir.Path, "topics", "t", "0", "log.layout");

    [Fact]
    public async Task A_partition_keeps_its_page_size_when_the_store_changes_and_one_without_a_layout_opens_with_the_legacy_size()
    {
        var options = LogFixture.Options(_dir.Path, openAtRest: false); // 64 KiB pages
        string value = new('v', 1000);
        await using (var store = await LogStore.OpenAsync(options))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            for (int i = 0; i < 200; i++)
            {
                await LogFixture.AppendAsync(partition, Acks.Disk, $"{i:D3}{value}"); // 200 KB: across pages
            }
        }
        Assert.Equal("page-size-bits=16\n", File.ReadAllText(Layout));

        // The store's pages change: the partition is still read with its own.
        options.PageSizeBits = 17;
        options.MemorySizeBits = 19;
        await using (var store = await LogStore.OpenAsync(options))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.Null(partition.Failure);
            Assert.Equal(Enumerable.Range(0, 200).Select(i => $"{i:D3}{value}"), LogFixture.ReadAll(partition, 0).Select(r => r.Value));
            await LogFixture.AppendAsync(partition, Acks.Disk, "after");
            var made = (await store.CreateTopicAsync("u", 1)).GetPartition(0);
            await LogFixture.AppendAsync(made, Acks.Disk, "new");
        }
        Assert.Equal("page-size-bits=17\n", File.ReadAllText(Path.Combine(_dir.Path, "topics", "u", "0", "log.layout")));

        // Made before partitions recorded their page size: read with Storage:LegacyPageSizeBits.
        File.Delete(Layout);
        options.LegacyPageSizeBits = 16;
        await using (var store = await LogStore.OpenAsync(options))
        {
            var records = LogFixture.ReadAll(store.GetTopic("t").GetPartition(0), 0);
            Assert.Equal(201, records.Count);
            Assert.Equal("after", records[^1].Value);
        }
    }

    [Fact]
    public async Task A_damaged_layout_fails_the_partition_instead_of_guessing_its_pages()
    {
        var options = LogFixture.Options(_dir.Path, openAtRest: false);
        await using (var store = await LogStore.OpenAsync(options))
        {
            await LogFixture.AppendAsync((await store.CreateTopicAsync("t", 1)).GetPartition(0), Acks.Disk, "x");
        }
        File.WriteAllText(Layout, "page-size-bits=banana\n");
        await using (var store = await LogStore.OpenAsync(options))
        {
            var failure = store.GetTopic("t").GetPartition(0).Failure;
            Assert.IsType<LogCorruptedException>(failure);
            Assert.Contains("log.layout", failure!.Message, StringComparison.Ordinal);
        }
    }
}
