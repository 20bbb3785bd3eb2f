using System.Collections.Concurrent;
using Confluent.Kafka;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// Confluent.Kafka consumer groups (the classic protocol, the client leader assigning) against the listener: three
/// consumers share a topic and rebalance as they come and go, commits are fenced and land in the store HTTP reads,
/// and a new consumer resumes where the group committed.
/// </summary>
public sealed class ConsumerGroupTests : IAsyncLifetime
{
    private KafkaServer _server = null!;

    public async Task InitializeAsync() => _server = await KafkaServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Three_consumers_share_the_partitions_rebalance_when_one_leaves_and_commit_what_HTTP_then_shows()
    {
        await Http.CreateTopicAsync(_server.Http, "shared", 6);
        var seen = new ConcurrentDictionary<string, int>();
        var holding = new ConcurrentDictionary<int, int>(); // consumer → partitions it holds now
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var leaving = new CancellationTokenSource();
        var consumers = Enumerable.Range(0, 3).Select(n => Task.Run(() =>
        {
            using var consumer = new ConsumerBuilder<Ignore, string>(Config("sharers"))
                .SetPartitionsAssignedHandler((_, partitions) => holding[n] = partitions.Count)
                .SetPartitionsRevokedHandler((_, _) => holding[n] = 0)
                .Build();
            consumer.Subscribe("shared");
            while (!stop.IsCancellationRequested && !(n == 2 && leaving.IsCancellationRequested))
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { IsPartitionEOF: false } result)
                {
                    seen.AddOrUpdate(result.Message.Value, 1, (_, c) => c + 1);
                    consumer.Commit(result);
                }
            }
            consumer.Close(); // LeaveGroup: the others rebalance at once
            holding[n] = 0;
        })).ToList();

        await Until(() => holding.Count == 3 && holding.Values.All(c => c == 2), "every consumer holds two partitions");
        await Http.ProduceAsync(_server.Http, "shared", Records(0, 600));
        await Until(() => seen.Count == 600, "the first 600 records are read");

        await leaving.CancelAsync(); // consumer 2 leaves
        await consumers[2];
        await Until(() => holding[0] + holding[1] == 6 && holding[0] == 3, "the two left hold three partitions each");
        await Http.ProduceAsync(_server.Http, "shared", Records(600, 60));
        await Until(() => seen.Count == 660, "the records after the rebalance are read");
        await stop.CancelAsync();
        await Task.WhenAll(consumers);

        Assert.Equal(660, seen.Count);
        var group = await Http.GetJsonAsync(_server.Http, "/v1/groups/sharers");
        var offsets = group["offsets"]!.AsArray();
        Assert.Equal(6, offsets.Count);
        Assert.All(offsets, o => Assert.Equal(110, (long)o!["committedOffset"]!));
        Assert.All(offsets, o => Assert.Equal(0, (long)o!["lag"]!));
    }

    private static string Records(int from, int count) =>
        "[" + string.Join(",", Enumerable.Range(from, count).Select(i => $$"""{"partition":{{i % 6}},"value":"r{{i}}"}""")) + "]";

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task A_new_consumer_resumes_where_the_group_committed_and_HTTP_can_move_the_offsets_of_an_empty_group()
    {
        await Http.CreateTopicAsync(_server.Http, "resume", 1);
        await Http.ProduceAsync(_server.Http, "resume", "[" + string.Join(",", Enumerable.Range(0, 10).Select(i => $$"""{"value":"v{{i}}"}""")) + "]");

        using (var first = new ConsumerBuilder<Ignore, string>(Config("resumers")).Build())
        {
            first.Subscribe("resume");
            var taken = Take(first, 4);
            Assert.Equal(["v0", "v1", "v2", "v3"], taken.Select(r => r.Message.Value));
            first.Commit(taken[^1]);
            var committed = first.Committed([new TopicPartition("resume", 0)], TimeSpan.FromSeconds(10));
            Assert.Equal(4, Assert.Single(committed).Offset.Value);
            first.Close();
        }

        using (var second = new ConsumerBuilder<Ignore, string>(Config("resumers")).Build())
        {
            second.Subscribe("resume");
            Assert.Equal("v4", Take(second, 1)[0].Message.Value);
            second.Close();
        }

        using var reset = await _server.Http.PutAsync("/v1/groups/resumers/offsets", Http.Json("""{"topic":"resume","to":{"offset":8}}"""));
        Assert.True(reset.IsSuccessStatusCode, await reset.Content.ReadAsStringAsync());
        using var third = new ConsumerBuilder<Ignore, string>(Config("resumers")).Build();
        third.Subscribe("resume");
        Assert.Equal("v8", Take(third, 1)[0].Message.Value);
        third.Close();
    }

    [Fact]
    public async Task Admin_deletes_an_empty_group_with_its_offsets_and_refuses_a_group_with_members_or_none()
    {
        await Http.CreateTopicAsync(_server.Http, "deleted", 1);
        await Http.ProduceAsync(_server.Http, "deleted", """[{"value":"a"},{"value":"b"}]""");
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.Bootstrap }).Build();
        using (var member = new ConsumerBuilder<Ignore, string>(Config("doomed")).Build())
        {
            member.Subscribe("deleted");
            member.Commit(Take(member, 2)[^1]);
            // While it has a member: NON_EMPTY_GROUP, and its offsets stay.
            var busy = await Assert.ThrowsAsync<Confluent.Kafka.Admin.DeleteGroupsException>(() => admin.DeleteGroupsAsync(["doomed"]));
            Assert.Equal(ErrorCode.NonEmptyGroup, Assert.Single(busy.Results).Error.Code);
            member.Close();
        }
        Assert.Equal(2, (long)(await Http.GetJsonAsync(_server.Http, "/v1/groups/doomed"))["offsets"]![0]!["committedOffset"]!);

        await admin.DeleteGroupsAsync(["doomed"]);
        await Http.GetProblemAsync(_server.Http, "/v1/groups/doomed", System.Net.HttpStatusCode.NotFound, "group_not_found");
        var gone = await Assert.ThrowsAsync<Confluent.Kafka.Admin.DeleteGroupsException>(() => admin.DeleteGroupsAsync(["doomed"]));
        Assert.Equal(ErrorCode.GroupIdNotFound, Assert.Single(gone.Results).Error.Code);
    }

    [Fact]
    public async Task A_group_is_used_over_one_protocol_at_a_time()
    {
        await Http.CreateTopicAsync(_server.Http, "either", 1);
        using (var consumer = new ConsumerBuilder<Ignore, string>(Config("kafka-held")).Build())
        {
            consumer.Subscribe("either");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (consumer.Assignment.Count == 0 && DateTime.UtcNow < deadline)
            {
                consumer.Consume(TimeSpan.FromMilliseconds(100));
            }
            Assert.NotEmpty(consumer.Assignment);

            using var join = await _server.Http.PostAsync("/v1/groups/kafka-held/members", Http.Json("""{"topics":["either"]}"""));
            await Http.AssertProblemAsync(join, System.Net.HttpStatusCode.Conflict, "group_in_use");
            consumer.Close();
        }

        // Once the Kafka client has left, HTTP may use the group; while an HTTP member holds it, Kafka clients may not.
        using var member = await _server.Http.PostAsync("/v1/groups/kafka-held/members", Http.Json("""{"topics":["either"]}"""));
        Assert.Equal(System.Net.HttpStatusCode.Created, member.StatusCode);
        ErrorCode? refused = null;
        using var refusedConsumer = new ConsumerBuilder<Ignore, string>(Config("kafka-held")).SetErrorHandler((_, e) => refused ??= e.Code).Build();
        refusedConsumer.Subscribe("either");
        var until = DateTime.UtcNow.AddSeconds(20);
        while (refused is null && DateTime.UtcNow < until)
        {
            try
            {
                refusedConsumer.Consume(TimeSpan.FromMilliseconds(100));
            }
            catch (ConsumeException ex)
            {
                refused = ex.Error.Code; // librdkafka reports a failed JoinGroup to the poll
            }
        }
        Assert.Equal(ErrorCode.InconsistentGroupProtocol, refused);
        Assert.Empty(refusedConsumer.Assignment);
    }

    private ConsumerConfig Config(string group) => new()
    {
        BootstrapServers = _server.Bootstrap,
        GroupId = group,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        EnableAutoCommit = false,
        SessionTimeoutMs = 6000,
        HeartbeatIntervalMs = 500,
    };

    private static List<ConsumeResult<Ignore, string>> Take(IConsumer<Ignore, string> consumer, int count)
    {
        var results = new List<ConsumeResult<Ignore, string>>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (results.Count < count && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } result)
            {
                results.Add(result);
            }
        }
        Assert.True(results.Count == count, $"took {results.Count} of {count}");
        return results;
    }
}
