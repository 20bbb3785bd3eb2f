using Gateway.Storage;

namespace Gateway.Groups.Tests;

public sealed class PartitionAssignorTests
{
    private static readonly Dictionary<string, IReadOnlyCollection<TopicPartition>> Nothing = [];

    private static Dictionary<string, IReadOnlySet<string>> Subscribe(params (string Member, string[] Topics)[] members) =>
        members.ToDictionary(m => m.Member, m => (IReadOnlySet<string>)m.Topics.ToHashSet());

    [Fact]
    public void Two_members_split_six_partitions_three_and_three()
    {
        var result = PartitionAssignor.Assign(Subscribe(("a", ["t"]), ("b", ["t"])), new Dictionary<string, int> { ["t"] = 6 }, Nothing);
        Assert.Equal(3, result["a"].Count);
        Assert.Equal(3, result["b"].Count);
        Assert.Equal(6, result.Values.SelectMany(x => x).Distinct().Count());
    }

    [Theory]
    [InlineData(1, 5)]
    [InlineData(3, 7)]
    [InlineData(4, 4)]
    [InlineData(5, 3)]
    [InlineData(7, 100)]
    public void Every_partition_goes_to_exactly_one_member_and_counts_differ_by_at_most_one(int memberCount, int partitions)
    {
        var subscriptions = Subscribe([.. Enumerable.Range(0, memberCount).Select(i => ($"m{i}", new[] { "t" }))]);
        var result = PartitionAssignor.Assign(subscriptions, new Dictionary<string, int> { ["t"] = partitions }, Nothing);
        var assigned = result.Values.SelectMany(x => x).ToList();
        Assert.Equal(partitions, assigned.Count);
        Assert.Equal(partitions, assigned.Distinct().Count());
        Assert.True(result.Values.Max(x => x.Count) - result.Values.Min(x => x.Count) <= 1);
    }

    [Fact]
    public void A_joining_member_takes_only_what_balance_needs()
    {
        var counts = new Dictionary<string, int> { ["t"] = 6 };
        var before = PartitionAssignor.Assign(Subscribe(("a", ["t"]), ("b", ["t"])), counts, Nothing);
        var previous = before.ToDictionary(x => x.Key, x => (IReadOnlyCollection<TopicPartition>)x.Value);
        var after = PartitionAssignor.Assign(Subscribe(("a", ["t"]), ("b", ["t"]), ("c", ["t"])), counts, previous);
        Assert.Equal(2, after["c"].Count);
        int moved = after["a"].Except(before["a"]).Count() + after["b"].Except(before["b"]).Count();
        Assert.Equal(0, moved);
        Assert.Equal(4, after["a"].Intersect(before["a"]).Count() + after["b"].Intersect(before["b"]).Count());
    }

    [Fact]
    public void A_leaving_member_hands_over_only_its_own_partitions()
    {
        var counts = new Dictionary<string, int> { ["t"] = 6 };
        var before = PartitionAssignor.Assign(Subscribe(("a", ["t"]), ("b", ["t"]), ("c", ["t"])), counts, Nothing);
        var previous = before.ToDictionary(x => x.Key, x => (IReadOnlyCollection<TopicPartition>)x.Value);
        previous.Remove("c");
        var after = PartitionAssignor.Assign(Subscribe(("a", ["t"]), ("b", ["t"])), counts, previous);
        Assert.Superset(before["a"].ToHashSet(), after["a"].ToHashSet());
        Assert.Superset(before["b"].ToHashSet(), after["b"].ToHashSet());
        Assert.Equal(3, after["a"].Count);
        Assert.Equal(3, after["b"].Count);
    }

    [Fact]
    public void The_same_input_gives_the_same_answer()
    {
        var subscriptions = Subscribe(("x", ["t", "u"]), ("y", ["t"]), ("z", ["u"]));
        var counts = new Dictionary<string, int> { ["t"] = 5, ["u"] = 3 };
        var first = PartitionAssignor.Assign(subscriptions, counts, Nothing);
        var second = PartitionAssignor.Assign(subscriptions, counts, Nothing);
        Assert.Equal(first.OrderBy(x => x.Key).Select(x => x.Value), second.OrderBy(x => x.Key).Select(x => x.Value));
    }

    [Fact]
    public void Members_get_only_topics_they_subscribe_to()
    {
        var result = PartitionAssignor.Assign(Subscribe(("x", ["t", "u"]), ("y", ["t"]), ("z", ["u"])), new Dictionary<string, int> { ["t"] = 4, ["u"] = 4 }, Nothing);
        Assert.All(result["y"], tp => Assert.Equal("t", tp.Topic));
        Assert.All(result["z"], tp => Assert.Equal("u", tp.Topic));
        Assert.Equal(8, result.Values.SelectMany(x => x).Distinct().Count());
        Assert.True(result.Values.Max(x => x.Count) - result.Values.Min(x => x.Count) <= 1);
    }

    [Fact]
    public void Growing_a_topic_gives_the_new_partitions_out_without_moving_old_ones()
    {
        var subscriptions = Subscribe(("a", ["t"]), ("b", ["t"]));
        var before = PartitionAssignor.Assign(subscriptions, new Dictionary<string, int> { ["t"] = 2 }, Nothing);
        var previous = before.ToDictionary(x => x.Key, x => (IReadOnlyCollection<TopicPartition>)x.Value);
        var after = PartitionAssignor.Assign(subscriptions, new Dictionary<string, int> { ["t"] = 4 }, previous);
        Assert.Superset(before["a"].ToHashSet(), after["a"].ToHashSet());
        Assert.Superset(before["b"].ToHashSet(), after["b"].ToHashSet());
        Assert.Equal(2, after["a"].Count);
        Assert.Equal(2, after["b"].Count);
    }
}
