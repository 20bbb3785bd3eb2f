using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Confluent.Kafka;
using Gateway.Bench.SseLoad;

// Kafka-protocol load for bench/kafka.sh; every mode prints one JSON line.
//   produce  <bootstrap> <topic> <seconds> [record-bytes=1024] [batch-bytes=65536] [acks=all|1] [warmup-seconds=3]
//   fill     <bootstrap> <topic> <megabytes> [record-bytes=1024]          (acks=1, as fast as it goes)
//   consume  <bootstrap> <topic> [partitions=1]                          (from offset 0 up to the high watermark)
//   fetch    <bootstrap> <topic> <end-offset> [max-bytes=8388608]         (partition 0 from offset 0 to end-offset, raw Fetch v4)
//   mock     <topic>[,<topic>…]                                           (hosts librdkafka's mock cluster, 3 brokers; prints its bootstrap; runs until stdin closes)
//   inflight <bootstrap> <topic> <seconds> [record-bytes=1024] [in-flight=64] [acks=all|1] [warmup-seconds=3]  (one record per produce call)
//   latency  <bootstrap> <topic> <rate> <seconds>                         (acks=all producer, consumer at the end)
//   idle     <bootstrap> <connections> <server-pid>                       (RSS per connection that said ApiVersions + Metadata)
string mode = args.Length > 0 ? args[0] : "";
int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : fallback;
try
{
    object result = mode switch
    {
        "produce" => Produce(args[1], args[2], Arg(3, 10), Arg(4, 1024), Arg(5, 65536), args.Length > 6 ? args[6] : "all", Arg(7, 3)),
        "fill" => Fill(args[1], args[2], Arg(3, 1024), Arg(4, 1024)),
        "consume" => Consume(args[1], args[2], Arg(3, 1)),
        "mock" => await MockAsync(args[1]),
        "inflight" => await InFlightAsync(args[1], args[2], Arg(3, 10), Arg(4, 1024), Arg(5, 64), args.Length > 6 ? args[6] : "all", Arg(7, 3)),
        "fetch" => await FetchAsync(args[1], args[2], long.Parse(args[3], CultureInfo.InvariantCulture), Arg(4, 8 << 20)),
        "latency" => await LatencyAsync(args[1], args[2], Arg(3, 1000), Arg(4, 20)),
        "idle" => await IdleAsync(args[1], Arg(2, 1000), Arg(3, 0)),
        _ => throw new ArgumentException($"unknown mode '{mode}'"),
    };
    Console.WriteLine(JsonSerializer.Serialize(result));
    return 0;
}
catch (Exception ex) when (ex is ArgumentException or IndexOutOfRangeException or FormatException)
{
    Console.Error.WriteLine($"usage: see the top of bench/KafkaLoad/Program.cs ({ex.Message})");
    return 2;
}

// librdkafka's defaults (not idempotent), but Kafka's (Java's) five requests in flight per connection; any librdkafka
// setting can be changed from the environment, e.g. KAFKALOAD_ENABLE_IDEMPOTENCE=true, KAFKALOAD_LINGER_MS=0.
static ProducerConfig ProducerConfig(string bootstrap, Acks acks, int batchBytes, int lingerMs) => Overridden(new ProducerConfig
{
    BootstrapServers = bootstrap,
    Acks = acks,
    MaxInFlight = 5,
    BatchSize = batchBytes,
    LingerMs = lingerMs,
    QueueBufferingMaxKbytes = 512 * 1024,
    QueueBufferingMaxMessages = 1_000_000,
    MessageTimeoutMs = 60_000,
});

static T Overridden<T>(T config)
    where T : ClientConfig
{
    foreach (var entry in Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>())
    {
        if (entry.Key is string key && key.StartsWith("KAFKALOAD_", StringComparison.Ordinal))
        {
            config.Set(key[10..].ToLowerInvariant().Replace('_', '.'), (string)entry.Value!);
        }
    }
    return config;
}

// A closed loop: the producer keeps its queue full; delivered records are counted in the measured window.
static object Produce(string bootstrap, string topic, int seconds, int recordBytes, int batchBytes, string acks, int warmupSeconds)
{
    var config = ProducerConfig(bootstrap, acks == "all" ? Acks.All : Acks.Leader, batchBytes, 5);
    config.StatisticsIntervalMs = 1000;
    string? statistics = null;
    using var producer = new ProducerBuilder<Null, byte[]>(config).SetStatisticsHandler((_, json) => statistics = json).Build();
    byte[] value = new byte[recordBytes];
    Random.Shared.NextBytes(value);
    long delivered = 0;
    long failed = 0;
    void Report(DeliveryReport<Null, byte[]> report)
    {
        if (report.Error.IsError)
        {
            Interlocked.Increment(ref failed);
        }
        else
        {
            Interlocked.Increment(ref delivered);
        }
    }
    var message = new Message<Null, byte[]> { Value = value };
    var partition = new TopicPartition(topic, 0);
    var total = Stopwatch.StartNew();
    long startCount = -1;
    TimeSpan startAt = default;
    while (total.Elapsed < TimeSpan.FromSeconds(warmupSeconds + seconds))
    {
        if (startCount < 0 && total.Elapsed >= TimeSpan.FromSeconds(warmupSeconds))
        {
            startCount = Interlocked.Read(ref delivered);
            startAt = total.Elapsed;
        }
        try
        {
            producer.Produce(partition, message, Report);
        }
        catch (ProduceException<Null, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
        {
            producer.Poll(TimeSpan.FromMilliseconds(1));
        }
    }
    long measured = Interlocked.Read(ref delivered) - startCount;
    double elapsed = (total.Elapsed - startAt).TotalSeconds;
    // What librdkafka saw of the broker in the last second: request round trips and the batches it sent.
    var (rttAvgMs, rttP99Ms, batchAvgBytes, inFlight) = BrokerStatistics(statistics);
    producer.Flush(TimeSpan.FromSeconds(30));
    return new
    {
        mode = "produce",
        rttAvgMs,
        rttP99Ms,
        batchAvgBytes,
        inFlight,
        acks,
        recordBytes,
        batchBytes,
        records = measured,
        seconds = Math.Round(elapsed, 2),
        recordsPerSecond = Math.Round(measured / elapsed),
        mbPerSecond = Math.Round(measured * (double)recordBytes / elapsed / 1e6, 1),
        failed = Interlocked.Read(ref failed),
    };
}

static (double RttAvgMs, double RttP99Ms, long BatchAvgBytes, long InFlight) BrokerStatistics(string? json)
{
    if (json is null)
    {
        return (-1, -1, -1, -1);
    }
    using var document = JsonDocument.Parse(json);
    var root = document.RootElement;
    var broker = root.GetProperty("brokers").EnumerateObject().Select(b => b.Value).FirstOrDefault(b => b.GetProperty("nodeid").GetInt32() >= 0);
    var topic = root.GetProperty("topics").EnumerateObject().Select(t => t.Value).FirstOrDefault();
    return broker.ValueKind == JsonValueKind.Undefined
        ? (-1, -1, -1, -1)
        : (broker.GetProperty("rtt").GetProperty("avg").GetInt64() / 1000.0,
           broker.GetProperty("rtt").GetProperty("p99").GetInt64() / 1000.0,
           topic.ValueKind == JsonValueKind.Undefined ? -1 : topic.GetProperty("batchsize").GetProperty("avg").GetInt64(),
           broker.GetProperty("waitresp_cnt").GetInt64());
}

static object Fill(string bootstrap, string topic, int megabytes, int recordBytes)
{
    using var producer = new ProducerBuilder<Null, byte[]>(ProducerConfig(bootstrap, Acks.Leader, 1 << 20, 5)).Build();
    byte[] value = new byte[recordBytes];
    Random.Shared.NextBytes(value);
    long count = (long)megabytes * 1_000_000 / recordBytes;
    long failed = 0;
    var clock = Stopwatch.StartNew();
    var message = new Message<Null, byte[]> { Value = value };
    var partition = new TopicPartition(topic, 0);
    for (long i = 0; i < count; i++)
    {
        while (true)
        {
            try
            {
                producer.Produce(partition, message, r => { if (r.Error.IsError) { Interlocked.Increment(ref failed); } });
                break;
            }
            catch (ProduceException<Null, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                producer.Poll(TimeSpan.FromMilliseconds(1));
            }
        }
    }
    producer.Flush(TimeSpan.FromMinutes(5));
    return new { mode = "fill", records = count, bytes = count * recordBytes, seconds = Math.Round(clock.Elapsed.TotalSeconds, 1), failed };
}

// A caught-up consumer's read of the whole topic: from offset 0 to the high watermark, as fast as the broker serves it.
static object Consume(string bootstrap, string topic, int partitions)
{
    var config = new ConsumerConfig
    {
        BootstrapServers = bootstrap,
        GroupId = "bench-consume",
        EnableAutoCommit = false,
        FetchMaxBytes = 52_428_800,
        MaxPartitionFetchBytes = 8_388_608,
        QueuedMaxMessagesKbytes = 262_144,
        EnablePartitionEof = true,
    };
    using var consumer = new ConsumerBuilder<Ignore, byte[]>(config).Build();
    var ends = Enumerable.Range(0, partitions).Select(p => consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)).High.Value).ToArray();
    consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, 0)));
    long records = 0;
    long bytes = 0;
    int done = 0;
    var clock = Stopwatch.StartNew();
    while (done < partitions && clock.Elapsed < TimeSpan.FromMinutes(5))
    {
        var result = consumer.Consume(TimeSpan.FromSeconds(5));
        if (result is null)
        {
            continue;
        }
        if (result.IsPartitionEOF)
        {
            if (result.Offset.Value >= ends[result.Partition.Value])
            {
                done++;
            }
            continue;
        }
        records++;
        bytes += result.Message.Value.Length;
    }
    double seconds = clock.Elapsed.TotalSeconds;
    return new { mode = "consume", records, bytes, seconds = Math.Round(seconds, 2), mbPerSecond = Math.Round(bytes / seconds / 1e6, 1), complete = done == partitions };
}

// librdkafka's mock cluster (three brokers, replication factor three) in this process, for the Kafka backend's
// benchmark: the topics (comma-separated) are made by a producer's metadata request (the mock does not take CreateTopics); the bootstrap
// line is printed first, the JSON line when stdin closes.
static async Task<object> MockAsync(string topic)
{
    var config = new ProducerConfig { Acks = Acks.All, EnableIdempotence = true };
    config.Set("test.mock.num.brokers", "3");
    using var owner = new ProducerBuilder<byte[], byte[]>(config).Build();
    string bootstrap;
    using (var admin = new DependentAdminClientBuilder(owner.Handle).Build())
    {
        bootstrap = string.Join(",", admin.GetMetadata(TimeSpan.FromSeconds(10)).Brokers.Select(b => $"{b.Host}:{b.Port}"));
    }
    foreach (string name in topic.Split(','))
    {
        await owner.ProduceAsync(name, new Message<byte[], byte[]> { Value = [0] });
    }
    Console.WriteLine(bootstrap);
    Console.Out.Flush();
    await Console.In.ReadToEndAsync();
    return new { mode = "mock", bootstrap };
}

// Confluent.Kafka alone, as the Kafka backend's baseline: one record per produce call, a fixed number of calls in
// flight (as 64 HTTP connections with one record per request), to partition 0; delivered records per second.
static async Task<object> InFlightAsync(string bootstrap, string topic, int seconds, int recordBytes, int inFlight, string acks, int warmupSeconds)
{
    var config = Overridden(new ProducerConfig
    {
        BootstrapServers = bootstrap,
        Acks = acks == "all" ? Acks.All : Acks.Leader,
        EnableIdempotence = acks == "all",
        LingerMs = 1,
        MessageTimeoutMs = 60_000,
    });
    using var producer = new ProducerBuilder<Null, byte[]>(config).Build();
    byte[] value = new byte[recordBytes];
    Random.Shared.NextBytes(value);
    var partition = new TopicPartition(topic, 0);
    using var slots = new SemaphoreSlim(inFlight, inFlight);
    long delivered = 0;
    long failed = 0;
    var clock = Stopwatch.StartNew();
    long startCount = -1;
    TimeSpan startAt = default;
    var pending = new List<Task>();
    while (clock.Elapsed < TimeSpan.FromSeconds(warmupSeconds + seconds))
    {
        if (startCount < 0 && clock.Elapsed >= TimeSpan.FromSeconds(warmupSeconds))
        {
            startCount = Interlocked.Read(ref delivered);
            startAt = clock.Elapsed;
        }
        await slots.WaitAsync();
        pending.Add(SendAsync());
        if (pending.Count > 10_000)
        {
            pending.RemoveAll(t => t.IsCompleted);
        }
    }
    long endCount = Interlocked.Read(ref delivered);
    var endAt = clock.Elapsed;
    await Task.WhenAll(pending);
    double rate = (endCount - startCount) / (endAt - startAt).TotalSeconds;
    return new { mode = "inflight", inFlight, acks, recordsPerSecond = Math.Round(rate, 1), mbPerSecond = Math.Round(rate * recordBytes / 1e6, 2), failed };

    async Task SendAsync()
    {
        try
        {
            await producer.ProduceAsync(partition, new Message<Null, byte[]> { Value = value });
            Interlocked.Increment(ref delivered);
        }
        catch (ProduceException<Null, byte[]>)
        {
            Interlocked.Increment(ref failed);
        }
        finally
        {
            slots.Release();
        }
    }
}

// The broker's side of a consumer's catch-up, measured as wrk measures B2: the leanest Kafka consumer there is. One
// connection, one Fetch v4 in flight (as a consumer keeps per broker), partition 0 from offset 0 until end-offset; the
// answer is read and its record batches walked only far enough to know the next offset (batch headers, no records).
static async Task<object> FetchAsync(string bootstrap, string topic, long end, int maxBytes)
{
    string[] parts = bootstrap.Split(':');
    using var tcp = new TcpClient { NoDelay = true, ReceiveBufferSize = 4 << 20 };
    await tcp.ConnectAsync(parts[0], int.Parse(parts[1], CultureInfo.InvariantCulture));
    var stream = tcp.GetStream();
    byte[] name = System.Text.Encoding.UTF8.GetBytes(topic);
    byte[] request = new byte[4 + 10 + 4 + 4 + 4 + 4 + 1 + 4 + 2 + name.Length + 4 + 4 + 8 + 4];
    var body = new BinaryWriterBE(request);
    body.Int32(request.Length - 4);
    body.Int16(1).Int16(4).Int32(0).Int16(-1);            // Fetch v4, correlation id, no client id
    body.Int32(-1).Int32(500).Int32(1).Int32(maxBytes);   // replica -1, max wait 500 ms, min 1 byte, max bytes
    body.Int8(0).Int32(1).Int16((short)name.Length).Bytes(name).Int32(1).Int32(0);
    int offsetAt = body.Position;
    body.Int64(0).Int32(maxBytes);
    byte[] answer = new byte[maxBytes + (1 << 20)];
    byte[] size = new byte[4];
    long offset = 0;
    long bytes = 0;
    long fetches = 0;
    var clock = Stopwatch.StartNew();
    while (offset < end && clock.Elapsed < TimeSpan.FromMinutes(5))
    {
        BinaryPrimitives.WriteInt64BigEndian(request.AsSpan(offsetAt), offset);
        await stream.WriteAsync(request);
        await stream.ReadExactlyAsync(size);
        int length = BinaryPrimitives.ReadInt32BigEndian(size);
        if (length > answer.Length)
        {
            answer = new byte[length];
        }
        await stream.ReadExactlyAsync(answer.AsMemory(0, length));
        fetches++;
        // correlation id, throttle, topics[1], name, partitions[1], partition, error, hwm, lso, aborted[], records
        int at = 4 + 4 + 4 + 2 + BinaryPrimitives.ReadInt16BigEndian(answer.AsSpan(12)) + 4 + 4;
        short error = BinaryPrimitives.ReadInt16BigEndian(answer.AsSpan(at));
        if (error != 0)
        {
            throw new InvalidOperationException($"fetch at offset {offset}: error {error}");
        }
        at += 2 + 8 + 8;
        int aborted = BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(at));
        at += 4 + Math.Max(0, aborted) * 16;
        int records = BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(at));
        at += 4;
        for (int stop = at + records; at + 61 <= stop;)
        {
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(answer.AsSpan(at));
            int batchLength = BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(at + 8));
            if (at + 12 + batchLength > stop)
            {
                break; // a partial batch at the end, as Kafka may send
            }
            offset = baseOffset + BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(at + 23)) + 1;
            bytes += 12 + batchLength;
            at += 12 + batchLength;
        }
    }
    double seconds = clock.Elapsed.TotalSeconds;
    return new { mode = "fetch", offset, bytes, fetches, seconds = Math.Round(seconds, 2), mbPerSecond = Math.Round(bytes / seconds / 1e6, 1), complete = offset >= end };
}

// Open loop: record i is due at start + i / rate; its latency runs from when it was due to when the consumer has it.
static async Task<object> LatencyAsync(string bootstrap, string topic, int rate, int seconds)
{
    using var producer = new ProducerBuilder<Null, byte[]>(ProducerConfig(bootstrap, Acks.All, 65536, 0)).Build();
    var consumerConfig = new ConsumerConfig
    {
        BootstrapServers = bootstrap,
        GroupId = "bench-latency",
        EnableAutoCommit = false,
        FetchWaitMaxMs = 500,
        FetchMinBytes = 1,
    };
    using var consumer = new ConsumerBuilder<Ignore, byte[]>(consumerConfig).Build();
    long end = consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value;
    consumer.Assign(new TopicPartitionOffset(topic, 0, end));
    var histogram = new Histogram();
    var lateness = new Histogram(); // how late the generator sent each record: its own share of the latency
    long total = (long)rate * seconds;
    long warmup = rate * 2L;
    var clock = Stopwatch.StartNew();
    var reading = Task.Run(() =>
    {
        long seen = 0;
        while (seen < total && clock.Elapsed < TimeSpan.FromSeconds(seconds + 30))
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result is null || result.IsPartitionEOF)
            {
                continue;
            }
            long now = clock.ElapsedTicks;
            long index = BinaryPrimitives.ReadInt64LittleEndian(result.Message.Value);
            long due = BinaryPrimitives.ReadInt64LittleEndian(result.Message.Value.AsSpan(8));
            if (index >= warmup)
            {
                histogram.Record((now - due) * 1_000_000 / Stopwatch.Frequency);
            }
            seen++;
        }
        return seen;
    });
    await Task.Delay(1000); // the consumer's assignment and first fetch
    clock.Restart();
    for (long i = 0; i < total; i++)
    {
        long dueTicks = i * Stopwatch.Frequency / rate;
        while (clock.ElapsedTicks < dueTicks)
        {
            long wait = (dueTicks - clock.ElapsedTicks) * 1000 / Stopwatch.Frequency;
            if (wait > 1)
            {
                await Task.Delay((int)wait - 1);
            }
            else
            {
                Thread.Yield(); // not a spin: librdkafka's threads share this core and must run the moment they are woken
            }
        }
        if (i >= warmup)
        {
            lateness.Record((clock.ElapsedTicks - dueTicks) * 1_000_000 / Stopwatch.Frequency);
        }
        byte[] value = new byte[1024];
        BinaryPrimitives.WriteInt64LittleEndian(value, i);
        BinaryPrimitives.WriteInt64LittleEndian(value.AsSpan(8), dueTicks);
        producer.Produce(new TopicPartition(topic, 0), new Message<Null, byte[]> { Value = value });
    }
    producer.Flush(TimeSpan.FromSeconds(30));
    long received = await reading;
    return new
    {
        mode = "latency",
        rate,
        records = total,
        received,
        p50Ms = Math.Round(histogram.PercentileMs(50), 2),
        p99Ms = Math.Round(histogram.PercentileMs(99), 2),
        p999Ms = Math.Round(histogram.PercentileMs(99.9), 2),
        maxMs = Math.Round(histogram.MaxMicros / 1000.0, 2),
        sendLateP99Ms = Math.Round(lateness.PercentileMs(99), 2),
    };
}

// Connections that did what a client does first (ApiVersions, Metadata) and then wait: what each costs the server.
static async Task<object> IdleAsync(string bootstrap, int connections, int serverPid)
{
    string[] parts = bootstrap.Split(':');
    int port = int.Parse(parts[1], CultureInfo.InvariantCulture);
    GC.Collect();
    await Task.Delay(1000);
    long before = ProcStats.RssKb(serverPid);
    var clients = new List<TcpClient>(connections);
    try
    {
        for (int i = 0; i < connections; i++)
        {
            var tcp = new TcpClient { NoDelay = true };
            await tcp.ConnectAsync(parts[0], port);
            clients.Add(tcp);
            var stream = tcp.GetStream();
            await RoundTripAsync(stream, 18, 0, []);                         // ApiVersions v0
            await RoundTripAsync(stream, 3, 1, [0xFF, 0xFF, 0xFF, 0xFF]);   // Metadata v1, every topic
        }
        await Task.Delay(3000);
        long after = ProcStats.RssKb(serverPid);
        return new { mode = "idle", connections, rssBeforeKb = before, rssAfterKb = after, kbPerConnection = Math.Round((after - before) / (double)connections, 2) };
    }
    finally
    {
        foreach (var client in clients)
        {
            client.Dispose();
        }
    }
}

static async Task RoundTripAsync(NetworkStream stream, short key, short version, byte[] body)
{
    byte[] frame = new byte[4 + 2 + 2 + 4 + 2 + body.Length];
    BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
    BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(4), key);
    BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(6), version);
    BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), 1);
    BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(12), -1); // no client id
    body.CopyTo(frame, 14);
    await stream.WriteAsync(frame);
    byte[] size = new byte[4];
    await stream.ReadExactlyAsync(size);
    byte[] answer = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
    await stream.ReadExactlyAsync(answer);
}

/// <summary>Big-endian fields into a buffer, as Kafka's requests are laid out.</summary>
internal sealed class BinaryWriterBE(byte[] buffer)
{
    public int Position { get; private set; }

    public BinaryWriterBE Int8(byte value)
    {
        buffer[Position++] = value;
        return this;
    }

    public BinaryWriterBE Int16(short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(buffer.AsSpan(Position), value);
        Position += 2;
        return this;
    }

    public BinaryWriterBE Int32(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(Position), value);
        Position += 4;
        return this;
    }

    public BinaryWriterBE Int64(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(buffer.AsSpan(Position), value);
        Position += 8;
        return this;
    }

    public BinaryWriterBE Bytes(byte[] value)
    {
        value.CopyTo(buffer, Position);
        Position += value.Length;
        return this;
    }
}
