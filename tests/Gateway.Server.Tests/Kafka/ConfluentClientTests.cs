using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// Confluent.Kafka (librdkafka 2.16), a client nobody here wrote, against the Kafka listener of a real server:
/// metadata, produce with acks=all and acks=1, fetch from an offset, offsets by position and time, and the same
/// records seen over HTTP both ways.
/// </summary>
public sealed class ConfluentClientTests : IAsyncLifetime
{
    private KafkaServer _server = null!;

    public async Task InitializeAsync() => _server = await KafkaServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Metadata_names_one_broker_that_leads_every_partition_of_every_topic()
    {
        await Http.CreateTopicAsync(_server.Http, "meta", 3);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.Bootstrap }).Build();

        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));

        var broker = Assert.Single(metadata.Brokers);
        Assert.Equal(0, broker.BrokerId);
        Assert.Equal(_server.Bootstrap, $"{broker.Host}:{broker.Port}");
        var topic = Assert.Single(metadata.Topics, t => t.Topic == "meta");
        Assert.Equal(ErrorCode.NoError, topic.Error.Code);
        Assert.Equal([0, 1, 2], topic.Partitions.Select(p => p.PartitionId).Order());
        Assert.All(topic.Partitions, p => Assert.Equal(0, p.Leader));
        Assert.Equal(ErrorCode.UnknownTopicOrPart, admin.GetMetadata("missing", TimeSpan.FromSeconds(10)).Topics.Single().Error.Code);
    }

    [Theory]
    [InlineData(Acks.All)]
    [InlineData(Acks.Leader)]
    public async Task Records_produced_by_a_Kafka_producer_are_fetched_by_a_Kafka_consumer_and_over_HTTP(Acks acks)
    {
        string topic = $"produced-{acks}".ToLowerInvariant();
        await Http.CreateTopicAsync(_server.Http, topic, 2);
        // acks=all with an idempotent producer (InitProducerId, sequences), as Java clients produce by default.
        var config = new ProducerConfig { BootstrapServers = _server.Bootstrap, Acks = acks, EnableIdempotence = acks == Acks.All, LingerMs = 5 };
        using (var producer = new ProducerBuilder<string?, byte[]>(config).Build())
        {
            var deliveries = new List<Task<DeliveryResult<string?, byte[]>>>();
            for (int i = 0; i < 200; i++)
            {
                var message = new Message<string?, byte[]>
                {
                    Key = i % 10 == 0 ? null : $"k{i}",
                    Value = Encoding.UTF8.GetBytes($"v{i}"),
                    Headers = new Headers { { "n", Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)) } },
                    Timestamp = new Timestamp(1_700_000_000_000 + i, TimestampType.CreateTime),
                };
                deliveries.Add(producer.ProduceAsync(new TopicPartition(topic, i % 2), message));
            }
            var results = await Task.WhenAll(deliveries);
            Assert.All(results, r => Assert.Equal(PersistenceStatus.Persisted, r.Status));
            // Dense offsets from 0 in each partition, in the order the producer sent them.
            foreach (var partition in results.GroupBy(r => r.Partition.Value))
            {
                Assert.Equal(Enumerable.Range(0, 100).Select(o => (long)o), partition.Select(r => r.Offset.Value));
            }
        }

        var consumed = Consume(topic, 0, 100);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"v{i * 2}"), consumed.Select(m => Encoding.UTF8.GetString(m.Message.Value)));
        Assert.Equal("k2", consumed[1].Message.Key);
        Assert.Null(consumed[0].Message.Key);
        Assert.Equal("2", Encoding.UTF8.GetString(consumed[1].Message.Headers.GetLastBytes("n")));
        Assert.Equal(1_700_000_000_002, consumed[1].Message.Timestamp.UnixTimestampMs);

        // The same records over HTTP: a Kafka client's bytes carry no format, so they come back as base64.
        var records = Http.Records(await Http.GetJsonAsync(_server.Http, $"/v1/topics/{topic}/partitions/0/records?offset=1&limit=1"));
        var record = Assert.Single(records);
        Assert.Equal(1, (long)record!["offset"]!);
        Assert.Equal(Convert.ToBase64String("v2"u8), (string?)record["valueBase64"]);
        Assert.Equal(1_700_000_000_002, (long)record["timestamp"]!);
    }

    [Theory]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public async Task Compressed_batches_reach_Kafka_consumers_as_they_are_and_HTTP_and_SSE_decompressed(CompressionType compression)
    {
        string topic = $"zip-{compression}".ToLowerInvariant();
        await Http.CreateTopicAsync(_server.Http, topic, 1);
        await using var stream = await SseClient.OpenAsync(_server.Http, $"/v1/topics/{topic}/events?from=earliest");
        static string Value(int i) => $"v{i} " + new string((char)('a' + (i % 26)), 200);
        var config = new ProducerConfig
        {
            BootstrapServers = _server.Bootstrap,
            Acks = Acks.All,
            EnableIdempotence = true,
            CompressionType = compression,
            LingerMs = 20,
        };
        using (var producer = new ProducerBuilder<string, string>(config).Build())
        {
            var deliveries = Enumerable.Range(0, 300).Select(i => producer.ProduceAsync(
                new TopicPartition(topic, 0),
                new Message<string, string> { Key = $"k{i}", Value = Value(i), Headers = new Headers { { "n", Encoding.UTF8.GetBytes($"{i}") } } })).ToList();
            var results = await Task.WhenAll(deliveries);
            Assert.Equal(Enumerable.Range(0, 300).Select(o => (long)o), results.Select(r => r.Offset.Value));
        }

        var consumed = Consume(topic, 0, 300);
        Assert.Equal(Enumerable.Range(0, 300).Select(Value), consumed.Select(c => Encoding.UTF8.GetString(c.Message.Value)));
        Assert.Equal("k299", consumed[299].Message.Key);

        // HTTP reads inside the compressed batches: the records from the offset on, as many as asked.
        var records = Http.Records(await Http.GetJsonAsync(_server.Http, $"/v1/topics/{topic}/partitions/0/records?offset=150&limit=5"));
        Assert.Equal(Enumerable.Range(150, 5).Select(Value), records.Select(r => Encoding.UTF8.GetString(Convert.FromBase64String((string)r!["valueBase64"]!))));
        Assert.Equal(150, (long)records[0]!["offset"]!);
        Assert.Equal("k150", Encoding.UTF8.GetString(Convert.FromBase64String((string)records[0]!["keyBase64"]!)));
        Assert.Equal("150", (string?)records[0]!["headers"]!["n"]);

        for (int i = 0; i < 300; i++)
        {
            var record = JsonNode.Parse((await stream.NextAsync()).Data)!;
            Assert.Equal(i, (long)record["offset"]!);
            Assert.Equal(Value(i), Encoding.UTF8.GetString(Convert.FromBase64String((string)record["valueBase64"]!)));
        }
    }

    [Fact]
    public async Task Records_produced_over_HTTP_are_consumed_by_a_Kafka_consumer_with_their_bytes_and_headers()
    {
        await Http.CreateTopicAsync(_server.Http, "from-http", 1);
        await Http.ProduceAsync(_server.Http, "from-http", """[{"key":"a","value":{"n":1},"headers":{"h":"x"}},{"value":"text"},{"valueBase64":"AAEC"}]""");

        var consumed = Consume("from-http", 0, 3);

        Assert.Equal("a", consumed[0].Message.Key);
        Assert.Equal("""{"n":1}""", Encoding.UTF8.GetString(consumed[0].Message.Value));
        Assert.Equal("x", Encoding.UTF8.GetString(consumed[0].Message.Headers.GetLastBytes("h")));
        Assert.Equal("text", Encoding.UTF8.GetString(consumed[1].Message.Value));
        Assert.Equal([0, 1, 2], consumed[2].Message.Value);
        Assert.Equal([0L, 1, 2], consumed.Select(c => c.Offset.Value));
    }

    [Fact]
    public async Task Watermarks_and_offsets_for_times_answer_as_Kafka_does()
    {
        await Http.CreateTopicAsync(_server.Http, "times", 1);
        await Http.ProduceAsync(_server.Http, "times", """[{"value":"a","timestamp":1000},{"value":"b","timestamp":2000},{"value":"c","timestamp":3000}]""");
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = _server.Bootstrap, GroupId = "unused", EnableAutoCommit = false }).Build();

        var watermarks = consumer.QueryWatermarkOffsets(new TopicPartition("times", 0), TimeSpan.FromSeconds(10));
        var found = consumer.OffsetsForTimes(
            [new TopicPartitionTimestamp("times", 0, new Timestamp(1500, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));
        var none = consumer.OffsetsForTimes(
            [new TopicPartitionTimestamp("times", 0, new Timestamp(9000, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));

        Assert.Equal(0, watermarks.Low.Value);
        Assert.Equal(3, watermarks.High.Value);
        Assert.Equal(1, Assert.Single(found).Offset.Value);
        Assert.Equal(Offset.End, Assert.Single(none).Offset);
    }

    [Fact]
    public async Task A_consumer_waiting_at_the_end_gets_a_record_as_it_is_produced()
    {
        await Http.CreateTopicAsync(_server.Http, "tail", 1);
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = _server.Bootstrap, GroupId = "unused", EnableAutoCommit = false, FetchWaitMaxMs = 5000 }).Build();
        consumer.Assign(new TopicPartitionOffset("tail", 0, 0));
        Assert.Null(consumer.Consume(TimeSpan.FromMilliseconds(300)));

        await Http.ProduceAsync(_server.Http, "tail", """[{"value":"late"}]""");

        var result = consumer.Consume(TimeSpan.FromSeconds(10));
        Assert.NotNull(result);
        Assert.Equal("late", Encoding.UTF8.GetString(result.Message.Value));
    }

    [Fact]
    public async Task Producing_to_a_topic_that_does_not_exist_fails_with_Kafkas_error()
    {
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = _server.Bootstrap, MessageTimeoutMs = 3000 }).Build();

        var error = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("nowhere", new Message<Null, string> { Value = "x" }));

        Assert.True(error.Error.Code is ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic or ErrorCode.Local_MsgTimedOut, error.Error.ToString());
        using var topic = await _server.Http.GetAsync("/v1/topics/nowhere");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, topic.StatusCode); // asking for a topic never creates it
    }

    [Fact]
    public async Task The_admin_client_creates_describes_grows_trims_and_deletes_topics_that_HTTP_sees()
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.Bootstrap }).Build();

        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = "admin",
            NumPartitions = 2,
            ReplicationFactor = 1,
            Configs = new Dictionary<string, string> { ["retention.ms"] = "3600000", ["max.message.bytes"] = "65536" },
        }]);
        var described = await Http.GetJsonAsync(_server.Http, "/v1/topics/admin");
        Assert.Equal(2, described["partitions"]!.AsArray().Count);
        Assert.Equal(3_600_000, (long)described["config"]!["retentionMs"]!);
        Assert.Equal(65_536, (int)described["config"]!["maxRecordBytes"]!);

        var configs = await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = "admin" }]);
        var entries = Assert.Single(configs).Entries;
        Assert.Equal("3600000", entries["retention.ms"].Value);
        Assert.Equal("65536", entries["max.message.bytes"].Value);

        // kafka-configs --alter: set one setting, delete another (back to the default), as PATCH would.
        var resource = new ConfigResource { Type = ResourceType.Topic, Name = "admin" };
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] =
            [
                new ConfigEntry { Name = "retention.ms", Value = "7200000", IncrementalOperation = AlterConfigOpType.Set },
                new ConfigEntry { Name = "max.message.bytes", IncrementalOperation = AlterConfigOpType.Delete },
            ],
        });
        var altered = await Http.GetJsonAsync(_server.Http, "/v1/topics/admin");
        Assert.Equal(7_200_000, (long)altered["config"]!["retentionMs"]!);
        Assert.NotEqual(65_536, (int)altered["config"]!["maxRecordBytes"]!);
        Assert.Equal("7200000", (await admin.DescribeConfigsAsync([resource])).Single().Entries["retention.ms"].Value);
        var refused = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] = [new ConfigEntry { Name = "retention.ms", Value = "0", IncrementalOperation = AlterConfigOpType.Set }],
        }));
        Assert.Equal(ErrorCode.InvalidConfig, refused.Results.Single().Error.Code);
        Assert.Equal(7_200_000, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/admin"))["config"]!["retentionMs"]!);

        var exists = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([new TopicSpecification { Name = "admin", NumPartitions = 1 }]));
        Assert.Equal(ErrorCode.TopicAlreadyExists, exists.Results.Single().Error.Code);
        var badConfig = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = "bad-config",
            NumPartitions = 1,
            Configs = new Dictionary<string, string> { ["message.timestamp.type"] = "LogAppendTime" },
        }]));
        Assert.Equal(ErrorCode.InvalidConfig, badConfig.Results.Single().Error.Code);

        // What stream processors set for their changelogs: compact keeps everything (no retention), tuning is ignored.
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = "changelog",
            NumPartitions = 1,
            Configs = new Dictionary<string, string> { ["cleanup.policy"] = "compact", ["message.timestamp.type"] = "CreateTime", ["segment.bytes"] = "52428800" },
        }]);
        var changelog = await Http.GetJsonAsync(_server.Http, "/v1/topics/changelog");
        Assert.Equal(-1, (long)changelog["config"]!["retentionMs"]!);
        Assert.Equal(-1, (long)changelog["config"]!["retentionBytes"]!);

        await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "admin", IncreaseTo = 4 }]);
        Assert.Equal(4, (await Http.GetJsonAsync(_server.Http, "/v1/topics/admin"))["partitions"]!.AsArray().Count);

        await Http.ProduceAsync(_server.Http, "admin", """[{"partition":0,"value":"a"},{"partition":0,"value":"b"},{"partition":0,"value":"c"}]""");
        var deleted = await admin.DeleteRecordsAsync([new TopicPartitionOffset("admin", 0, 2)]);
        Assert.Equal(2, Assert.Single(deleted).Offset.Value);
        Assert.Equal(2, (long)(await Http.GetJsonAsync(_server.Http, "/v1/topics/admin/partitions/0/offsets"))["beginOffset"]!);

        await admin.DeleteTopicsAsync(["admin"]);
        using var gone = await _server.Http.GetAsync("/v1/topics/admin");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, gone.StatusCode);
    }

    private List<ConsumeResult<string?, byte[]>> Consume(string topic, int partition, int count)
    {
        using var consumer = new ConsumerBuilder<string?, byte[]>(new ConsumerConfig { BootstrapServers = _server.Bootstrap, GroupId = "unused", EnableAutoCommit = false }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, partition, 0));
        var results = new List<ConsumeResult<string?, byte[]>>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (results.Count < count && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { IsPartitionEOF: false } result)
            {
                results.Add(result);
            }
        }
        Assert.True(results.Count == count, $"consumed {results.Count} of {count}");
        return results;
    }
}
