using Gateway.Storage;
using Gateway.Storage.Records;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Log.Tests;

public sealed class IdempotencyTests : IDisposable
{
    /// <summary>HTTP idempotency stamps use producer ids from here up (below are Kafka producers').</summary>
    private const long HttpIds = ProducerBatch.ProducerIdLimit;

    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(5_000_000));

    public void Dispose() => _dir.Dispose();

    private static async Task<long> AppendStampedAsync(PartitionLog partition, IdempotencyStamp stamp, params string[] values)
    {
        using var batch = LogFixture.Batch(values);
        batch.MarkIdempotent(stamp);
        return await partition.AppendAsync(batch, Acks.Disk);
    }

    [Fact]
    public async Task A_retried_stamp_appends_once_also_after_a_restart()
    {
        var stamp = new IdempotencyStamp(HttpIds + 42, 0xABCDEF);
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            await LogFixture.AppendAsync(partition, Acks.Disk, "before");
            Assert.Equal(1, await AppendStampedAsync(partition, stamp, "a", "b"));
            Assert.Equal(1, await AppendStampedAsync(partition, stamp, "a", "b"));
            Assert.Equal(3, partition.EndOffset);
            Assert.True(partition.TryGetIdempotent(HttpIds + 42, out var earlier));
            Assert.Equal(new IdempotentBatch(1, 2, 0xABCDEF), earlier);
        }
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time))
        {
            var partition = store.GetTopic("t").GetPartition(0);
            Assert.True(partition.TryGetIdempotent(HttpIds + 42, out var recovered));
            Assert.Equal(1, recovered.BaseOffset);
            Assert.Equal(1, await AppendStampedAsync(partition, stamp, "a", "b"));
            Assert.Equal(3, partition.EndOffset);
            await Assert.ThrowsAsync<IdempotencyKeyReusedException>(() => AppendStampedAsync(partition, stamp with { RequestHash = 7 }, "other"));
            Assert.Equal(3, partition.EndOffset);
        }
    }

    [Fact]
    public async Task Stamps_are_forgotten_after_the_window_and_beyond_the_count()
    {
        var options = LogFixture.Options(_dir.Path);
        options.IdempotencyWindowMs = 60_000;
        options.IdempotencyKeysPerPartition = 2;
        await using var store = await LogStore.OpenAsync(options, _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await AppendStampedAsync(partition, new IdempotencyStamp(HttpIds + 1, 1), "one");
        await AppendStampedAsync(partition, new IdempotencyStamp(HttpIds + 2, 2), "two");
        await AppendStampedAsync(partition, new IdempotencyStamp(HttpIds + 3, 3), "three");
        Assert.False(partition.TryGetIdempotent(HttpIds + 1, out _)); // the oldest of three, with room for two
        Assert.True(partition.TryGetIdempotent(HttpIds + 3, out _));

        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.False(partition.TryGetIdempotent(HttpIds + 3, out _));
        Assert.Equal(3, await AppendStampedAsync(partition, new IdempotencyStamp(HttpIds + 3, 3), "three"));
    }

    [Fact]
    public async Task A_replayed_durable_retry_answers_only_once_the_first_append_is_committed()
    {
        var options = LogFixture.Options(_dir.Path, flushIntervalMs: 60_000);
        await using var store = await LogStore.OpenAsync(options, _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        var stamp = new IdempotencyStamp(HttpIds + 9, 9);
        using (var first = LogFixture.Batch("x"))
        {
            first.MarkIdempotent(stamp);
            Assert.Equal(0, await partition.AppendAsync(first, Acks.Memory));
        }
        Assert.Equal(0, partition.EndOffset); // appended, not yet committed
        Assert.Equal(0, await AppendStampedAsync(partition, stamp, "x"));
        Assert.Equal(1, partition.EndOffset); // the durable retry waited for (and asked for) the commit
    }

    [Fact]
    public void The_stamp_rides_in_the_batch_header_under_the_crc()
    {
        using var builder = LogFixture.Batch("x");
        builder.MarkIdempotent(new IdempotencyStamp(long.MaxValue, IdempotencyStamp.HashMask));
        builder.Seal();
        var batch = new RecordBatch(builder.SealedBatch(0).ToArray());
        Assert.True(RecordBatch.TryValidate(batch.Bytes.Span, out _));
        Assert.Equal(new IdempotencyStamp(long.MaxValue, IdempotencyStamp.HashMask), batch.Stamp);
        using var plain = LogFixture.Batch("y");
        plain.Seal();
        Assert.Null(new RecordBatch(plain.SealedBatch(0).ToArray()).Stamp);
    }
}
