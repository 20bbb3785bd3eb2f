using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// kill -9 while a Kafka producer writes with acks=all: every record the broker acknowledged is there after the
/// restart, at the offset it was acknowledged with, with its bytes (acks=all means what HTTP's acks=disk means); an
/// idempotent producer's retry after the kill lands once, and producer ids are not handed out again.
/// </summary>
public sealed class KafkaCrashTests : IDisposable
{
    private readonly TempDirectory _data = new("gateway-kafka-crash-tests", create: false);

    public void Dispose() => _data.Dispose();

    [Fact]
    public async Task Every_record_acknowledged_with_acks_all_survives_kill_9()
    {
        var acknowledged = new ConcurrentDictionary<(int Partition, long Offset), string>();
        for (int cycle = 0; cycle < 3; cycle++)
        {
            int port = KafkaServer.FreePort();
            await using var server = await ServerProcess.StartAsync(_data.Path, $"--KafkaProtocol:Listen=127.0.0.1:{port}");
            if (cycle == 0)
            {
                await Http.CreateTopicAsync(server.Client, "kcrash", 2);
            }
            var config = new ProducerConfig
            {
                BootstrapServers = $"127.0.0.1:{port}",
                Acks = Acks.All,
                EnableIdempotence = true,
                LingerMs = 2,
                MessageTimeoutMs = 5000,
            };
            using var producer = new ProducerBuilder<Null, string>(config).Build();
            int before = acknowledged.Count;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            for (int i = 0; acknowledged.Count < before + 500 && DateTime.UtcNow < deadline; i++)
            {
                string value = $"c{cycle}-{i}";
                producer.Produce(new TopicPartition("kcrash", i % 2), new Message<Null, string> { Value = value }, report =>
                {
                    if (report.Error.Code == ErrorCode.NoError)
                    {
                        acknowledged[(report.Partition.Value, report.Offset.Value)] = value;
                    }
                });
                if (i % 50 == 49)
                {
                    await Task.Delay(1);
                }
            }
            Assert.True(acknowledged.Count >= before + 500, $"only {acknowledged.Count - before} acknowledged in cycle {cycle}");
            server.Kill(); // with produce requests still in flight
            producer.Flush(TimeSpan.FromSeconds(6)); // what was not acknowledged fails; it is not counted
        }

        await using var last = await ServerProcess.StartAsync(_data.Path);
        var stored = new Dictionary<(int, long), string>();
        for (int p = 0; p < 2; p++)
        {
            long offset = 0;
            while (true)
            {
                var records = Http.Records(await Http.GetJsonAsync(last.Client, $"/v1/topics/kcrash/partitions/{p}/records?offset={offset}&limit=10000"));
                if (records.Count == 0)
                {
                    break;
                }
                foreach (var record in records)
                {
                    stored[(p, (long)record!["offset"]!)] = Encoding.UTF8.GetString(Convert.FromBase64String((string)record["valueBase64"]!));
                }
                offset = (long)records[^1]!["offset"]! + 1;
            }
        }
        var lost = acknowledged.Where(a => !stored.TryGetValue(a.Key, out string? value) || value != a.Value).Take(5).ToList();
        Assert.True(lost.Count == 0, $"acknowledged records lost or moved, e.g. {string.Join(", ", lost)}");
    }

    [Fact]
    public async Task An_idempotent_producers_retry_after_kill_9_is_answered_with_its_first_offset()
    {
        int port = KafkaServer.FreePort();
        byte[] request;
        long producerId;
        await using (var server = await ServerProcess.StartAsync(_data.Path, $"--KafkaProtocol:Listen=127.0.0.1:{port}"))
        {
            await Http.CreateTopicAsync(server.Client, "kretry", 1);
            using var client = await RawKafkaClient.ConnectAsync($"127.0.0.1:{port}");
            (_, producerId, _) = KafkaFrames.InitProducerIdResult(await client.RequestAsync(22, 1, KafkaFrames.InitProducerIdBody(), flexible: false));
            for (int i = 0; i < 3; i++)
            {
                byte[] batch = KafkaFrames.OneRecordBatch(Encoding.UTF8.GetBytes($"r{i}"), producerId, 0, i);
                request = KafkaFrames.ProduceBody("kretry", 0, batch);
                Assert.Equal((0, (long)i), KafkaFrames.ProduceResult(await client.RequestAsync(0, 7, request, flexible: false), "kretry"));
            }
            server.Kill(); // no graceful stop: no checkpoint at the end, the producer state comes from the log
        }
        request = KafkaFrames.ProduceBody("kretry", 0, KafkaFrames.OneRecordBatch("r2"u8, producerId, 0, 2));

        port = KafkaServer.FreePort();
        await using var restarted = await ServerProcess.StartAsync(_data.Path, $"--KafkaProtocol:Listen=127.0.0.1:{port}");
        using var again = await RawKafkaClient.ConnectAsync($"127.0.0.1:{port}");
        Assert.Equal((0, 2L), KafkaFrames.ProduceResult(await again.RequestAsync(0, 7, request, flexible: false), "kretry"));
        Assert.Equal(45, KafkaFrames.ProduceResult(await again.RequestAsync(0, 7, KafkaFrames.ProduceBody("kretry", 0, KafkaFrames.OneRecordBatch("gap"u8, producerId, 0, 9)), flexible: false), "kretry").Error);
        Assert.Equal(3, (long)(await Http.GetJsonAsync(restarted.Client, "/v1/topics/kretry/partitions/0/offsets"))["endOffset"]!);
        var (_, next, _) = KafkaFrames.InitProducerIdResult(await again.RequestAsync(22, 1, KafkaFrames.InitProducerIdBody(), flexible: false));
        Assert.True(next > producerId, $"producer id {next} after {producerId}: handed out again after the kill");
    }
}
