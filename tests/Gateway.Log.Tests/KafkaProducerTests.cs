using System.Buffers.Binary;
using Gateway.Storage;
using Gateway.Storage.Records;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Log.Tests;

/// <summary>
/// Kafka idempotent producers on one partition, by Kafka's rules: a retry of one of the producer's last five batches
/// is answered with its original offsets, a gap is refused, an older epoch is fenced, sequences wrap; the state
/// survives a restart (from the checkpoint and from the log alone) and keeps apart from HTTP's Idempotency-Keys.
/// </summary>
public sealed class KafkaProducerTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(5_000_000));

    public void Dispose() => _dir.Dispose();

    /// <summary>A batch as a Kafka idempotent producer sends it: the producer fields set, the CRC over them.</summary>
    private static RecordBatchBuilder ProducerBatch(long producerId, short epoch, int sequence, params string[] values)
    {
        byte[] bytes;
        using (var builder = LogFixture.Batch(values))
        {
            builder.Seal();
            bytes = builder.SealedBatch(0).ToArray();
        }
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(BatchLayout.ProducerId), producerId);
        BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(BatchLayout.ProducerEpoch), epoch);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(BatchLayout.BaseSequence), sequence);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(BatchLayout.Crc), Crc32C.Compute(bytes.AsSpan(BatchLayout.CrcStart)));
        Assert.Equal(IncomingBatchError.None, IncomingBatch.Validate(bytes, 1 << 20, out _));
        return RecordBatchBuilder.FromValidatedBatch(bytes);
    }

    private static async Task<long> ProduceAsync(PartitionLog partition, long producerId, short epoch, int sequence, params string[] values)
    {
        using var batch = ProducerBatch(producerId, epoch, sequence, values);
        return await partition.AppendAsync(batch, Acks.Disk);
    }

    [Fact]
    public async Task A_retry_of_any_of_the_last_five_batches_is_answered_with_its_original_offsets_and_appends_nothing()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(i * 2, await ProduceAsync(partition, 7, 0, i * 2, $"r{i * 2}", $"r{(i * 2) + 1}"));
        }

        for (int i = 1; i < 6; i++)
        {
            Assert.Equal(i * 2, await ProduceAsync(partition, 7, 0, i * 2, $"r{i * 2}", $"r{(i * 2) + 1}"));
        }
        Assert.Equal(12, partition.EndOffset);
        // The first batch is six back: no longer kept, and not the next in sequence either.
        await Assert.ThrowsAsync<OutOfOrderSequenceException>(() => ProduceAsync(partition, 7, 0, 0, "r0", "r1"));
        Assert.Equal(12, partition.EndOffset);
    }

    [Fact]
    public async Task A_gap_in_the_sequence_is_refused_and_the_next_batch_in_order_goes_in()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await ProduceAsync(partition, 3, 0, 0, "a", "b");

        await Assert.ThrowsAsync<OutOfOrderSequenceException>(() => ProduceAsync(partition, 3, 0, 3, "d"));
        await Assert.ThrowsAsync<OutOfOrderSequenceException>(() => ProduceAsync(partition, 3, 0, 1, "b", "c")); // overlaps, not a retry
        Assert.Equal(2, partition.EndOffset);

        Assert.Equal(2, await ProduceAsync(partition, 3, 0, 2, "c"));
        Assert.Equal(["a", "b", "c"], LogFixture.ReadAll(partition, 0).Select(r => r.Value));
    }

    [Fact]
    public async Task An_older_epoch_is_fenced_and_a_new_epoch_starts_at_sequence_0()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await ProduceAsync(partition, 5, 1, 0, "a");

        await Assert.ThrowsAsync<OutOfOrderSequenceException>(() => ProduceAsync(partition, 5, 2, 1, "b"));
        Assert.Equal(1, await ProduceAsync(partition, 5, 2, 0, "b"));
        await Assert.ThrowsAsync<InvalidProducerEpochException>(() => ProduceAsync(partition, 5, 1, 1, "zombie"));
        await Assert.ThrowsAsync<InvalidProducerEpochException>(() => ProduceAsync(partition, 5, 1, 0, "a")); // not a retry any more
        Assert.Equal(2, partition.EndOffset);
    }

    [Fact]
    public async Task Sequences_wrap_at_int_max_and_an_unknown_producer_may_start_anywhere()
    {
        await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);

        Assert.Equal(0, await ProduceAsync(partition, 9, 0, int.MaxValue - 1, "a", "b")); // as Kafka: no state, any sequence
        Assert.Equal(2, await ProduceAsync(partition, 9, 0, 0, "c"));
        Assert.Equal(0, await ProduceAsync(partition, 9, 0, int.MaxValue - 1, "a", "b")); // the retry across the wrap
        await Assert.ThrowsAsync<OutOfOrderSequenceException>(() => ProduceAsync(partition, 9, 0, 2, "e"));
        Assert.Equal(3, partition.EndOffset);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Producer_state_survives_a_restart_from_the_checkpoint_and_from_the_log_alone(bool keepCheckpoint)
    {
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            await ProduceAsync(partition, 11, 0, 0, "a", "b");
            await ProduceAsync(partition, 11, 0, 2, "c");
            await ProduceAsync(partition, 12, 3, 40, "x");
        }
        string checkpoint = Path.Combine(_dir.Path, "topics", "t", "0", RecoveryCheckpoint.FileName);
        Assert.True(File.Exists(checkpoint));
        Assert.Equal(3, RecoveryCheckpoint.Load(Path.GetDirectoryName(checkpoint)!)!.Producers.Count);
        if (!keepCheckpoint)
        {
            File.Delete(checkpoint);
        }

        await using var reopened = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var recovered = reopened.GetTopic("t").GetPartition(0);
        Assert.Equal(0, await ProduceAsync(recovered, 11, 0, 0, "a", "b"));
        Assert.Equal(2, await ProduceAsync(recovered, 11, 0, 2, "c"));
        Assert.Equal(3, await ProduceAsync(recovered, 12, 3, 40, "x"));
        await Assert.ThrowsAsync<OutOfOrderSequenceException>(() => ProduceAsync(recovered, 11, 0, 5, "gap"));
        await Assert.ThrowsAsync<InvalidProducerEpochException>(() => ProduceAsync(recovered, 12, 2, 0, "old"));
        Assert.Equal(4, await ProduceAsync(recovered, 11, 0, 3, "d"));
        Assert.Equal(5, recovered.EndOffset);
    }

    [Fact]
    public async Task Kafka_producers_and_HTTP_idempotency_keys_share_the_header_fields_and_never_each_others_state()
    {
        var stamp = new IdempotencyStamp(Storage.ProducerBatch.ProducerIdLimit + 11, 0x1234);
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time))
        {
            var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
            await ProduceAsync(partition, 11, 0, 0, "kafka");
            using (var http = LogFixture.Batch("http"))
            {
                http.MarkIdempotent(stamp);
                Assert.Equal(1, await partition.AppendAsync(http, Acks.Disk));
            }
            Assert.False(partition.TryGetIdempotent(11, out _));
            Assert.Throws<ArgumentOutOfRangeException>(() => LogFixture.Batch("x").MarkIdempotent(new IdempotencyStamp(11, 1)));
        }
        File.Delete(Path.Combine(_dir.Path, "topics", "t", "0", RecoveryCheckpoint.FileName));

        await using var reopened = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
        var recovered = reopened.GetTopic("t").GetPartition(0);
        Assert.True(recovered.TryGetIdempotent(stamp.ProducerId, out var earlier));
        Assert.Equal(1, earlier.BaseOffset);
        Assert.False(recovered.TryGetIdempotent(11, out _));
        Assert.Equal(0, await ProduceAsync(recovered, 11, 0, 0, "kafka"));
        Assert.Equal(2, await ProduceAsync(recovered, 11, 0, 1, "kafka 2"));
    }

    [Fact]
    public async Task A_producer_is_forgotten_after_its_expiration_and_then_starts_anywhere()
    {
        var options = LogFixture.Options(_dir.Path);
        options.ProducerIdExpirationMs = 60_000;
        await using var store = await LogStore.OpenAsync(options, _time);
        var partition = (await store.CreateTopicAsync("t", 1)).GetPartition(0);
        await ProduceAsync(partition, 1, 0, 0, "a");

        _time.Advance(TimeSpan.FromMinutes(2));

        Assert.Equal(1, await ProduceAsync(partition, 1, 0, 17, "b"));
    }

    [Fact]
    public async Task Producer_ids_are_never_handed_out_twice_across_restarts()
    {
        var ids = new HashSet<long>();
        for (int start = 0; start < 3; start++)
        {
            await using var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path), _time);
            for (int i = 0; i < 5; i++)
            {
                long id = await ((ILogStorage)store).NewProducerIdAsync();
                Assert.InRange(id, 0, Storage.ProducerBatch.ProducerIdLimit - 1);
                Assert.True(ids.Add(id), $"id {id} handed out twice");
            }
        }
        Assert.True(File.Exists(Path.Combine(_dir.Path, "producer-ids")));
    }
}
