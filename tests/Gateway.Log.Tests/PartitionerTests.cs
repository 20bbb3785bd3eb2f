using System.Text;
using Gateway.Storage;

namespace Gateway.Log.Tests;

public sealed class PartitionerTests
{
    // The vectors of Kafka's UtilsTest.testMurmur2.
    [Theory]
    [InlineData("21", -973932308)]
    [InlineData("foobar", -790332482)]
    [InlineData("a-little-bit-long-string", -985981536)]
    [InlineData("a-little-bit-longer-string", -1486304829)]
    [InlineData("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)]
    [InlineData("abc", 479470107)]
    public void Murmur2_matches_kafka(string key, int expected)
    {
        Assert.Equal(expected, Partitioner.Murmur2(Encoding.UTF8.GetBytes(key)));
    }

    [Fact]
    public void Keys_map_to_kafkas_partition_and_stay_in_range()
    {
        // toPositive(-790332482) % 6 = (0x7fffffff & -790332482) % 6
        Assert.Equal((-790332482 & 0x7fffffff) % 6, Partitioner.ForKey("foobar"u8, 6));
        for (int i = 0; i < 1000; i++)
        {
            int p = Partitioner.ForKey(Encoding.UTF8.GetBytes($"key-{i}"), 7);
            Assert.InRange(p, 0, 6);
        }
    }

    [Theory]
    [InlineData("orders", true)]
    [InlineData("a.b_c-D9", true)]
    [InlineData("...", true)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData("", false)]
    [InlineData("a/b", false)]
    [InlineData("../x", false)]
    [InlineData("naïve", false)]
    [InlineData("with space", false)]
    public void Topic_names_follow_kafkas_rule(string name, bool valid)
    {
        Assert.Equal(valid, TopicName.IsValid(name));
    }

    [Fact]
    public void Topic_names_are_at_most_249_characters()
    {
        Assert.True(TopicName.IsValid(new string('a', 249)));
        Assert.False(TopicName.IsValid(new string('a', 250)));
    }
}
