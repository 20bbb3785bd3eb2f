using System.Text;
using System.Text.Json;
using Gateway.Log;
using Gateway.Server.Records;
using Gateway.Server.Streaming;
using Gateway.Storage;
using Gateway.Storage.Records;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Tests.Records;

public sealed class SharedEventCacheTests : IAsyncLifetime
{
    private readonly TempDirectory _dataDirectory = new("gateway-cache-tests", create: false);
    private LogStore _store = null!;

    public async Task InitializeAsync() => _store = await LogStore.OpenAsync(new LogStoreOptions { DataDirectory = _dataDirectory.Path, PageSizeBits = 16, MemorySizeBits = 18, SegmentSizeBits = 20, MinFreeDiskBytes = 0 });

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _dataDirectory.Dispose();
    }

    [Fact]
    public async Task Subscribers_at_the_same_offset_share_one_encoding_and_a_recreated_topic_never_sees_old_bytes()
    {
        var cache = new SharedEventCache(Options.Create(new StreamingOptions()));
        var partition = (await _store.CreateTopicAsync("t", 1)).GetPartition(0);
        using (var batch = new RecordBatchBuilder())
        {
            batch.Add(1, Payload.Null, new Payload("first"u8, PayloadFormat.Text), null);
            await partition.AppendAsync(batch, Acks.Disk);
        }
        var name = JsonEncodedText.Encode("t");
        byte[] one = Encode(cache, partition, name);
        byte[] two = Encode(cache, partition, name);
        Assert.Same(one, two);
        Assert.Contains("\"value\":\"first\"", Encoding.UTF8.GetString(one), StringComparison.Ordinal);

        await _store.DeleteTopicAsync("t");
        var again = (await _store.CreateTopicAsync("t", 1)).GetPartition(0);
        using (var batch = new RecordBatchBuilder())
        {
            batch.Add(1, Payload.Null, new Payload("second"u8, PayloadFormat.Text), null);
            await again.AppendAsync(batch, Acks.Disk);
        }
        Assert.Contains("\"value\":\"second\"", Encoding.UTF8.GetString(Encode(cache, again, name)), StringComparison.Ordinal);
    }

    private static byte[] Encode(SharedEventCache cache, PartitionLog partition, JsonEncodedText name)
    {
        using var set = partition.Read(0, 1, 1000);
        foreach (var record in set)
        {
            return cache.Get(partition, name, record);
        }
        throw new InvalidOperationException("no record");
    }
}
