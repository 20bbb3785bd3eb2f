namespace Gateway.Log.Tests;

public sealed class OffsetIndexTests
{
    [Fact]
    public void Floor_finds_the_last_entry_at_or_before_an_offset()
    {
        var index = new OffsetIndex(intervalBytes: 100);
        index.OnAppend(0, 64, long.MinValue);
        index.OnAppend(10, 100, 5);    // less than an interval after the previous: not indexed
        index.OnAppend(20, 200, 6);
        index.OnAppend(30, 400, 9);
        Assert.Equal(3, index.Count);
        Assert.Equal(64, index.FloorAddress(0, 64));
        Assert.Equal(64, index.FloorAddress(19, 64));
        Assert.Equal(200, index.FloorAddress(20, 64));
        Assert.Equal(400, index.FloorAddress(1000, 64));
        Assert.Equal(500, index.FloorAddress(25, 500)); // never below the log's begin
    }

    [Fact]
    public void Timestamp_floor_starts_where_every_earlier_timestamp_is_smaller()
    {
        var index = new OffsetIndex(intervalBytes: 1);
        index.OnAppend(0, 64, long.MinValue);
        index.OnAppend(10, 100, 50);
        index.OnAppend(20, 200, 90);
        Assert.Equal(64, index.TimestampFloorAddress(10, 64));
        Assert.Equal(100, index.TimestampFloorAddress(60, 64));
        Assert.Equal(200, index.TimestampFloorAddress(1000, 64));
    }

    [Fact]
    public void Truncation_drops_entries_below_the_new_begin()
    {
        var index = new OffsetIndex(intervalBytes: 1);
        index.OnAppend(0, 64, 0);
        index.OnAppend(10, 100, 0);
        index.OnAppend(20, 200, 0);
        index.TruncateBefore(150);
        Assert.Equal(1, index.Count);
        Assert.Equal(150, index.FloorAddress(12, 150));
    }
}
