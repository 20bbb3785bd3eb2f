using System.Buffers.Binary;
using System.Net.Sockets;
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
    public async Task A_request_it_does_not_serve_closes_the_connection_and_the_server_goes_on(string what, short key, short version)
    {
        using var client = await ConnectAsync();

        await client.SendAsync(key, version, new byte[16], flexible: false);

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
        byte[] batch = OneRecordBatch("hello"u8);
        batch[^1] ^= 0xFF; // the value's last byte, under the CRC

        byte[] answer = await client.RequestAsync(0, 7, ProduceBody("crc", 0, batch), flexible: false);

        // responses[1] { name, partitions[1] { index, error_code, ... } }
        int p = 4 + 2 + "crc".Length + 4 + 4;
        Assert.Equal(2, BinaryPrimitives.ReadInt16BigEndian(answer.AsSpan(p)));
        Assert.Equal(0, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/crc/partitions/0/offsets"))["endOffset"]!);

        byte[] good = await client.RequestAsync(0, 7, ProduceBody("crc", 0, OneRecordBatch("hello"u8)), flexible: false);
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(good.AsSpan(p)));
        Assert.Equal(1, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/crc/partitions/0/offsets"))["endOffset"]!);
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

    private async Task<RawKafkaClient> ConnectAsync()
    {
        var parts = _server.Bootstrap.Split(':');
        var tcp = new TcpClient();
        await tcp.ConnectAsync(parts[0], int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        return new RawKafkaClient(tcp);
    }

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

    /// <summary>A produce v7 body: no transactional id, acks=-1, one topic, one partition, these record bytes.</summary>
    private static byte[] ProduceBody(string topic, int partition, byte[] records)
    {
        var body = new List<byte> { 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x13, 0x88, 0, 0, 0, 1 };
        body.AddRange([(byte)(topic.Length >> 8), (byte)topic.Length, .. Encoding.UTF8.GetBytes(topic)]);
        body.AddRange([0, 0, 0, 1]);
        body.AddRange(BigEndian(partition));
        body.AddRange(BigEndian(records.Length));
        body.AddRange(records);
        return [.. body];
    }

    /// <summary>A v2 batch of one record with this value, as a Kafka producer writes it (CRC-32C over attributes onward).</summary>
    private static byte[] OneRecordBatch(ReadOnlySpan<byte> value)
    {
        var record = new List<byte> { 0 };          // attributes
        record.AddRange([0, 0]);                     // timestamp delta 0, offset delta 0
        record.Add(1);                               // key: null (zigzag -1)
        record.Add((byte)(value.Length << 1));       // value length (zigzag)
        record.AddRange(value.ToArray());
        record.Add(0);                               // no headers
        var records = new List<byte> { (byte)(record.Count << 1) };
        records.AddRange(record);

        var batch = new byte[61 + records.Count];
        BinaryPrimitives.WriteInt64BigEndian(batch, 0);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(8), batch.Length - 12);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(12), -1);
        batch[16] = 2;
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(23), 0);                  // last offset delta
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(27), 1_700_000_000_000); // base timestamp
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(35), 1_700_000_000_000); // max timestamp
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(43), -1);                 // producer id
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(51), -1);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(53), -1);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(57), 1);                  // one record
        records.CopyTo(batch, 61);
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(17), Crc32C(batch.AsSpan(21)));
        return batch;
    }

    private static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
            }
        }
        return ~crc;
    }

    private static byte[] BigEndian(int value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        return bytes;
    }

    /// <summary>A Kafka connection spoken by hand: frames out, frames in.</summary>
    private sealed class RawKafkaClient(TcpClient tcp) : IDisposable
    {
        private int _correlation;

        public NetworkStream Stream { get; } = tcp.GetStream();

        public async Task SendAsync(short key, short version, byte[] body, bool flexible)
        {
            var frame = new List<byte>();
            frame.AddRange([(byte)(key >> 8), (byte)key]);
            frame.AddRange([(byte)(version >> 8), (byte)version]);
            frame.AddRange(BigEndian(++_correlation));
            frame.AddRange([0x00, 0x04, .. "test"u8]);
            if (flexible)
            {
                frame.Add(0); // no tagged fields
            }
            frame.AddRange(body);
            await Stream.WriteAsync(BigEndian(frame.Count));
            await Stream.WriteAsync(frame.ToArray());
        }

        /// <summary>Sends a request and returns the response body (after the correlation id, which must match).</summary>
        public async Task<byte[]> RequestAsync(short key, short version, byte[] body, bool flexible)
        {
            await SendAsync(key, version, body, flexible);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            byte[] size = new byte[4];
            await Stream.ReadExactlyAsync(size, timeout.Token);
            byte[] frame = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
            await Stream.ReadExactlyAsync(frame, timeout.Token);
            Assert.Equal(_correlation, BinaryPrimitives.ReadInt32BigEndian(frame));
            return frame[4..];
        }

        /// <summary>Whether the server closes the connection (reads end) within 10 s.</summary>
        public async Task<bool> ClosedAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            byte[] buffer = new byte[256];
            try
            {
                while (await Stream.ReadAsync(buffer, timeout.Token) > 0)
                {
                }
                return true;
            }
            catch (IOException)
            {
                return true; // reset
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        public void Dispose() => tcp.Dispose();
    }
}
