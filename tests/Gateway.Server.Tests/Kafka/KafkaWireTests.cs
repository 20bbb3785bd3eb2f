using System.Buffers.Binary;
using System.Text;

namespace Gateway.Server.Tests.Kafka;

/// <summary>The Kafka listener at the byte level: version negotiation, and what it does with frames no client should send.</summary>
public sealed class KafkaWireTests : IAsyncLifetime
{
    private KafkaServer _server = null!;

    public async Task InitializeAsync() => _server = await KafkaServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task ApiVersions_lists_every_served_api_from_version_0_in_both_encodings()
    {
        using var client = await ConnectAsync();

        byte[] v0 = await client.RequestAsync(18, 0, [], flexible: false);
        byte[] v3 = await client.RequestAsync(18, 3, [0x01, 0x01, 0x00], flexible: true); // empty compact strings, no tags

        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(v0));
        var ranges = ReadRanges(v0.AsSpan(2), compact: false);
        Assert.Equal((0, 8), ranges[0]);   // Produce: 3 is in range (librdkafka 2.0.2 needs it for the v2 format)
        Assert.Equal((0, 11), ranges[1]);  // Fetch: 4 is in range
        Assert.Equal((0, 3), ranges[18]);
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(v3));
        Assert.Equal(ranges, ReadRanges(v3.AsSpan(2), compact: true));
    }

    [Fact]
    public async Task An_ApiVersions_version_it_does_not_know_gets_UNSUPPORTED_VERSION_in_the_v0_form()
    {
        using var client = await ConnectAsync();

        byte[] answer = await client.RequestAsync(18, 99, [0x01, 0x01, 0x00], flexible: true);

        Assert.Equal(35, BinaryPrimitives.ReadInt16BigEndian(answer));
        Assert.True(ReadRanges(answer.AsSpan(2), compact: false).ContainsKey(18));
    }

    [Theory]
    [InlineData("an unknown API key", 999, 0)]
    [InlineData("a version above the range", 0, 42)]
    public async Task A_request_it_does_not_serve_is_answered_UNSUPPORTED_VERSION_then_closed_and_the_server_goes_on(string what, short key, short version)
    {
        using var client = await ConnectAsync();

        byte[] answer = await client.RequestAsync(key, version, new byte[16], flexible: false);

        Assert.Equal(35, BinaryPrimitives.ReadInt16BigEndian(answer)); // UNSUPPORTED_VERSION
        Assert.True(await client.ClosedAsync(), what);
        await AssertServingAsync();
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(-5)]
    [InlineData(3)]
    public async Task A_frame_of_an_impossible_size_closes_the_connection(int size)
    {
        using var client = await ConnectAsync();
        byte[] prefix = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(prefix, size);

        await client.Stream.WriteAsync(prefix);
        await client.Stream.WriteAsync(new byte[64]);

        Assert.True(await client.ClosedAsync());
        await AssertServingAsync();
    }

    [Fact]
    public async Task A_produce_body_that_lies_about_its_lengths_closes_the_connection_and_stores_nothing()
    {
        await Http.CreateTopicAsync(_server.Http, "lies", 1);
        using var client = await ConnectAsync();
        var body = new List<byte>();
        body.AddRange([0xFF, 0xFF]);                 // transactional_id: null
        body.AddRange([0xFF, 0xFF]);                 // acks -1
        body.AddRange([0x00, 0x00, 0x13, 0x88]);     // timeout 5000
        body.AddRange([0x00, 0x00, 0x00, 0x01]);     // one topic
        body.AddRange([0x00, 0x04, .. "lies"u8]);
        body.AddRange([0x00, 0x00, 0x00, 0x01]);     // one partition
        body.AddRange([0x00, 0x00, 0x00, 0x00]);     // partition 0
        body.AddRange([0x00, 0x10, 0x00, 0x00]);     // records: 1 MiB claimed, 3 bytes there
        body.AddRange([1, 2, 3]);

        await client.SendAsync(0, 7, [.. body], flexible: false);

        Assert.True(await client.ClosedAsync());
        Assert.Equal(0, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/lies/partitions/0/offsets"))["endOffset"]!);
    }

    [Fact]
    public async Task A_batch_whose_CRC_does_not_match_is_CORRUPT_MESSAGE_and_nothing_is_stored()
    {
        await Http.CreateTopicAsync(_server.Http, "crc", 1);
        using var client = await ConnectAsync();
        byte[] batch = KafkaFrames.OneRecordBatch("hello"u8);
        batch[^1] ^= 0xFF; // the value's last byte, under the CRC

        byte[] answer = await client.RequestAsync(0, 7, KafkaFrames.ProduceBody("crc", 0, batch), flexible: false);

        // responses[1] { name, partitions[1] { index, error_code, ... } }
        int p = 4 + 2 + "crc".Length + 4 + 4;
        Assert.Equal(2, BinaryPrimitives.ReadInt16BigEndian(answer.AsSpan(p)));
        Assert.Equal(0, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/crc/partitions/0/offsets"))["endOffset"]!);

        byte[] good = await client.RequestAsync(0, 7, KafkaFrames.ProduceBody("crc", 0, KafkaFrames.OneRecordBatch("hello"u8)), flexible: false);
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(good.AsSpan(p)));
        Assert.Equal(1, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/crc/partitions/0/offsets"))["endOffset"]!);
    }

    [Fact]
    public async Task An_idempotent_producers_retry_is_answered_with_its_first_offset_and_gaps_and_fenced_epochs_are_refused()
    {
        await Http.CreateTopicAsync(_server.Http, "idem", 1);
        using var client = await ConnectAsync();
        var (error, producerId, epoch) = KafkaFrames.InitProducerIdResult(await client.RequestAsync(22, 1, KafkaFrames.InitProducerIdBody(), flexible: false));
        Assert.Equal((0, 0), (error, epoch));
        var second = KafkaFrames.InitProducerIdResult(await client.RequestAsync(22, 0, KafkaFrames.InitProducerIdBody(), flexible: false));
        Assert.NotEqual(producerId, second.ProducerId);
        Assert.Equal(42, KafkaFrames.InitProducerIdResult(await client.RequestAsync(22, 1, KafkaFrames.InitProducerIdBody("tx"), flexible: false)).Error); // INVALID_REQUEST

        async Task<(short, long)> ProduceAsync(string value, long id, short e, int sequence) =>
            KafkaFrames.ProduceResult(await client.RequestAsync(0, 7, KafkaFrames.ProduceBody("idem", 0, KafkaFrames.OneRecordBatch(Encoding.UTF8.GetBytes(value), id, e, sequence)), flexible: false), "idem");

        Assert.Equal((0, 0L), await ProduceAsync("a", producerId, 0, 0));
        Assert.Equal((0, 1L), await ProduceAsync("b", producerId, 0, 1));
        Assert.Equal((0, 0L), await ProduceAsync("a", producerId, 0, 0));   // a retry: the first answer again
        Assert.Equal(45, (await ProduceAsync("d", producerId, 0, 3)).Item1); // OUT_OF_ORDER_SEQUENCE_NUMBER
        Assert.Equal((0, 2L), await ProduceAsync("c", producerId, 1, 0));   // a new epoch starts at 0
        Assert.Equal(47, (await ProduceAsync("z", producerId, 0, 2)).Item1); // INVALID_PRODUCER_EPOCH
        Assert.Equal(59, (await ProduceAsync("h", 1L << 48, 0, 0)).Item1);   // UNKNOWN_PRODUCER_ID: HTTP's stamps live there
        Assert.Equal((0, 3L), await ProduceAsync("x", second.ProducerId, 0, 0));

        var records = Http.Records(await Http.GetJsonAsync(_server.Http, "/v1/topics/idem/partitions/0/records?offset=0"));
        Assert.Equal(["a", "b", "c", "x"], records.Select(r => Encoding.UTF8.GetString(Convert.FromBase64String((string)r!["valueBase64"]!))));
    }

    private async Task AssertServingAsync()
    {
        using (var ready = await _server.Http.GetAsync("/health/ready"))
        {
            Assert.True(ready.IsSuccessStatusCode);
        }
        using var client = await ConnectAsync();
        byte[] answer = await client.RequestAsync(18, 0, [], flexible: false);
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(answer));
    }

    private Task<RawKafkaClient> ConnectAsync() => RawKafkaClient.ConnectAsync(_server.Bootstrap);

    private static Dictionary<short, (short, short)> ReadRanges(ReadOnlySpan<byte> span, bool compact)
    {
        int count;
        int p;
        if (compact)
        {
            count = span[0] - 1;
            p = 1;
        }
        else
        {
            count = BinaryPrimitives.ReadInt32BigEndian(span);
            p = 4;
        }
        var ranges = new Dictionary<short, (short, short)>();
        for (int i = 0; i < count; i++)
        {
            ranges[BinaryPrimitives.ReadInt16BigEndian(span[p..])] = (BinaryPrimitives.ReadInt16BigEndian(span[(p + 2)..]), BinaryPrimitives.ReadInt16BigEndian(span[(p + 4)..]));
            p += compact ? 7 : 6;
        }
        return ranges;
    }

}
