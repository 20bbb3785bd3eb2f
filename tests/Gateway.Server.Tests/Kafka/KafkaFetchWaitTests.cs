using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// Kafka fetches that wait for records take their principal's long-poll slots (<c>Quotas:MaxConcurrentWaits</c>),
/// shared with HTTP's long-polls and streams: with none free a fetch answers at once with <c>throttle_time_ms</c>.
/// </summary>
public sealed class KafkaFetchWaitTests : IAsyncLifetime
{
    private KafkaServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await KafkaServer.StartAsync("--Quotas:MaxConcurrentWaits=1");
        await Http.CreateTopicAsync(_server.Http, "quiet", 1);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>Fetch v4 of partition 0 at offset 0 of an empty topic, waiting up to <paramref name="maxWaitMs"/>.</summary>
    private static byte[] FetchBody(int maxWaitMs)
    {
        var body = new List<byte>();
        body.AddRange(KafkaFrames.BigEndian(-1));
        body.AddRange(KafkaFrames.BigEndian(maxWaitMs));
        body.AddRange(KafkaFrames.BigEndian(1));
        body.AddRange(KafkaFrames.BigEndian(1 << 20));
        body.Add(0);
        body.AddRange(KafkaFrames.BigEndian(1));
        body.AddRange([0, 5, .. "quiet"u8]);
        body.AddRange(KafkaFrames.BigEndian(1));
        body.AddRange(KafkaFrames.BigEndian(0));
        body.AddRange(new byte[8]);
        body.AddRange(KafkaFrames.BigEndian(1 << 20));
        return body.ToArray();
    }

    [Fact]
    public async Task A_fetch_past_the_principals_waits_answers_at_once_throttled_and_HTTP_long_polls_count_too()
    {
        using var first = await RawKafkaClient.ConnectAsync(_server.Bootstrap);
        using var second = await RawKafkaClient.ConnectAsync(_server.Bootstrap);

        // The first fetch waits (its slot is the principal's only one) ...
        var waiting = first.RequestAsync(1, 4, FetchBody(3_000), flexible: false);
        await Task.Delay(300);
        Assert.False(waiting.IsCompleted);

        // ... so a second one answers now, empty, with throttle_time_ms, and an HTTP long-poll is refused.
        var clock = Stopwatch.StartNew();
        byte[] throttled = await second.RequestAsync(1, 4, FetchBody(3_000), flexible: false);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"a fetch without a slot waited {clock.Elapsed}");
        Assert.Equal(1_000, BinaryPrimitives.ReadInt32BigEndian(throttled));
        var poll = await _server.Http.GetAsync("/v1/topics/quiet/partitions/0/records?offset=0&waitMs=2000");
        Assert.Equal(HttpStatusCode.TooManyRequests, poll.StatusCode);
        Assert.Contains("quota_exceeded", await poll.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The waiting fetch ends at its max wait, untrottled, and gives its slot back.
        byte[] waited = await waiting;
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(waited));
        clock.Restart();
        byte[] again = await second.RequestAsync(1, 4, FetchBody(500), flexible: false);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(400), "the slot was not given back: the fetch did not wait");
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(again));
    }
}
