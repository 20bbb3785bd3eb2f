using System.Buffers;
using Gateway.Server.Streaming;
using Gateway.Storage;

namespace Gateway.Server.Tests.Streaming;

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

    [Fact]
    public void Written_into_a_response_the_cursor_is_the_same_text_and_keeps_its_format()
    {
        // The bytes of the first version: version 1, one topic "t", one partition 0 at offset 5 (a client's
        // Last-Event-ID from before must still resume).
        var one = new Dictionary<TopicPartition, long> { [new TopicPartition("t", 0)] = 5 };
        Assert.Equal("AQEBdAEABQ", EventCursor.Encode(one));
        var many = new Dictionary<TopicPartition, long>
        {
            [new TopicPartition("orders", 7)] = 123_456_789_012,
            [new TopicPartition("a.b-c_d", 3)] = 42,
            [new TopicPartition("orders", 0)] = 0,
        };
        foreach (var positions in new[] { one, many })
        {
            var output = new ArrayBufferWriter<byte>(1);
            output.Write("x"u8);
            EventCursor.Write(output, positions);
            Assert.Equal("x" + EventCursor.Encode(positions), System.Text.Encoding.UTF8.GetString(output.WrittenSpan));
        }
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
