using System.Buffers.Binary;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// Thousands of mutated real requests (flipped bytes, lying lengths and counts, junk, cut frames) against the Kafka
/// listener. Each may be answered or close its connection; afterwards the server is healthy, logged no error, and the
/// topic holds only whole copies of the one batch the seeds produce, at dense offsets: nothing partial was stored.
/// </summary>
public sealed class KafkaFuzzTests : IAsyncLifetime
{
    private const int Mutations = 4000;
    private KafkaServer _server = null!;

    public async Task InitializeAsync() => _server = await KafkaServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Mutated_requests_never_crash_the_server_nor_store_anything_partial()
    {
        await Http.CreateTopicAsync(_server.Http, "fuzz", 2);
        var seeds = Seeds();
        var random = new Random(32);
        int answered = 0, closed = 0;
        var client = await RawKafkaClient.ConnectAsync(_server.Bootstrap);
        try
        {
            for (int i = 0; i < Mutations; i++)
            {
                byte[] frame = Mutate(seeds[random.Next(seeds.Count)], random);
                bool sent;
                try
                {
                    await client.SendRawAsync(frame);
                    sent = true;
                }
                catch (IOException)
                {
                    sent = false;
                }
                if (sent && await client.TryReadAsync(TimeSpan.FromMilliseconds(100)) is not null)
                {
                    answered++;
                    continue;
                }
                closed++;
                client.Dispose();
                client = await RawKafkaClient.ConnectAsync(_server.Bootstrap);
            }
        }
        finally
        {
            client.Dispose();
        }

        using (var ready = await _server.Http.GetAsync("/health/ready"))
        {
            Assert.True(ready.IsSuccessStatusCode, await ready.Content.ReadAsStringAsync());
        }
        string seedValue = Convert.ToBase64String("fuzz-value"u8);
        for (int p = 0; p < 2; p++)
        {
            var records = Http.Records(await Http.GetJsonAsync(_server.Http, $"/v1/topics/fuzz/partitions/{p}/records?offset=0&limit=10000"));
            Assert.Equal(Enumerable.Range(0, records.Count).Select(o => (long)o), records.Select(r => (long)r!["offset"]!));
            Assert.All(records, r => Assert.Equal(seedValue, (string?)r!["valueBase64"]));
        }
        var errors = _server.Process.Output.Split('\n').Where(l => l.Contains(" ERR]", StringComparison.Ordinal) || l.Contains("FTL]", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 0, string.Join('\n', _server.Process.Output.Split('\n').SkipWhile(l => !l.Contains(" ERR]", StringComparison.Ordinal)).Take(30)));
        Assert.True(answered > Mutations / 10 && closed > Mutations / 10, $"answered {answered}, closed {closed}: the mutations should reach both outcomes");
    }

    /// <summary>Whole frames (size first) of valid requests: the mutations start from these.</summary>
    private static List<byte[]> Seeds()
    {
        byte[] topic = [0x00, 0x04, .. "fuzz"u8];
        return
        [
            Frame(18, 0, []),
            Frame(18, 3, [0x01, 0x01, 0x00], flexible: true),
            Frame(3, 8, [0, 0, 0, 1, .. topic, 1, 0, 0]),
            Frame(0, 7, KafkaFrames.ProduceBody("fuzz", 0, KafkaFrames.OneRecordBatch("fuzz-value"u8))),
            Frame(0, 3, KafkaFrames.ProduceBody("fuzz", 1, KafkaFrames.OneRecordBatch("fuzz-value"u8))),
            Frame(1, 11, [
                0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
                0, 0, 0, 1, .. topic, 0, 0, 0, 1, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0,
                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0]),
            Frame(2, 5, [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1, .. topic, 0, 0, 0, 1, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF,
                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Frame(8, 7, [0x00, 0x02, .. "fz"u8, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1, .. topic,
                0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Frame(9, 5, [0x00, 0x02, .. "fz"u8, 0, 0, 0, 1, .. topic, 0, 0, 0, 1, 0, 0, 0, 0]),
            Frame(10, 2, [0x00, 0x02, .. "fz"u8, 0]),
            Frame(32, 3, [0, 0, 0, 1, 2, .. topic, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]),
        ];
    }

    private static byte[] Frame(short key, short version, byte[] body, bool flexible = false)
    {
        var frame = new List<byte> { 0, 0, 0, 0, (byte)(key >> 8), (byte)key, (byte)(version >> 8), (byte)version, 0, 0, 0, 7, 0x00, 0x04 };
        frame.AddRange("fuzz"u8.ToArray());
        if (flexible)
        {
            frame.Add(0);
        }
        frame.AddRange(body);
        byte[] bytes = [.. frame];
        BinaryPrimitives.WriteInt32BigEndian(bytes, bytes.Length - 4);
        return bytes;
    }

    private static byte[] Mutate(byte[] seed, Random random)
    {
        byte[] frame = (byte[])seed.Clone();
        switch (random.Next(5))
        {
            case 0: // flip a few bits anywhere after the size
                for (int n = random.Next(1, 4); n > 0; n--)
                {
                    frame[random.Next(4, frame.Length)] ^= (byte)(1 << random.Next(8));
                }
                return frame;
            case 1: // a length or count that lies
                if (frame.Length > 12)
                {
                    BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(random.Next(4, frame.Length - 4)), random.Next(4) switch
                    {
                        0 => -1,
                        1 => int.MaxValue,
                        2 => random.Next(0, 1 << 20),
                        _ => -random.Next(2, 1000),
                    });
                }
                return frame;
            case 2: // a cut body, the size saying so
                int keep = random.Next(8, frame.Length);
                byte[] cut = frame[..keep];
                BinaryPrimitives.WriteInt32BigEndian(cut, keep - 4);
                return cut;
            case 3: // junk inside
                int at = random.Next(4, frame.Length);
                byte[] junk = new byte[random.Next(1, 16)];
                random.NextBytes(junk);
                byte[] grown = [.. frame[..at], .. junk, .. frame[at..]];
                BinaryPrimitives.WriteInt32BigEndian(grown, grown.Length - 4);
                return grown;
            default: // a size that lies about the frame
                BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4 + random.Next(-6, 7));
                return frame;
        }
    }
}
