using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// kill -9 while a Kafka producer writes with acks=all: every record the broker acknowledged is there after the
/// restart, at the offset it was acknowledged with, with its bytes (acks=all means what HTTP's acks=disk means).
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
                EnableIdempotence = false,
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
}
