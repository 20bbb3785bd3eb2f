using Gateway.Groups;
using Gateway.Server.Streaming;

namespace Gateway.Server.Tests;

public sealed class EventCursorTests
{
    [Fact]
    public void A_cursor_round_trips_every_position()
    {
        var positions = new Dictionary<TopicPartition, long>
        {
            [new TopicPartition("orders", 0)] = 0,
            [new TopicPartition("orders", 7)] = 123_456_789_012,
            [new TopicPartition("a.b-c_d", 3)] = 42,
        };
        Assert.True(EventCursor.TryDecode(EventCursor.Encode(positions), out var decoded));
        Assert.Equal(positions.OrderBy(p => p.Key), decoded.OrderBy(p => p.Key));
    }

    [Fact]
    public void A_cursor_is_short_and_url_safe()
    {
        var positions = Enumerable.Range(0, 16).ToDictionary(p => new TopicPartition("orders", p), p => (long)(p * 1000));
        string cursor = EventCursor.Encode(positions);
        Assert.True(cursor.Length < 80, cursor);
        Assert.DoesNotContain(cursor, c => c is '+' or '/' or '=' or ' ');
    }

    [Theory]
    [InlineData("")]
    [InlineData("not base64!")]
    [InlineData("AA")]
    [InlineData("Af____________8")]
    public void Anything_else_is_refused(string text)
    {
        Assert.False(EventCursor.TryDecode(text, out _));
    }
}
