using Gateway.KafkaProtocol.Groups;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Server.Tests.Kafka;

/// <summary>The classic group protocol's state machine on a fake clock: joins, generations, the leader's assignment, fencing, session expiry.</summary>
public sealed class KafkaGroupCoordinatorTests : IDisposable
{
    private const short None = 0, IllegalGeneration = 22, UnknownMemberId = 25, RebalanceInProgress = 27, MemberIdRequired = 79;
    private readonly FakeTimeProvider _time = new();
    private readonly KafkaGroupCoordinator _groups;

    public KafkaGroupCoordinatorTests() => _groups = new KafkaGroupCoordinator(_time);

    public void Dispose() => _groups.Dispose();

    [Fact]
    public async Task A_first_join_gets_a_member_id_then_the_group_forms_with_its_leader()
    {
        var first = await _groups.JoinAsync(Join(""));
        Assert.Equal(MemberIdRequired, first.Error);
        Assert.StartsWith("client-", first.MemberId, StringComparison.Ordinal);

        var joined = await _groups.JoinAsync(Join(first.MemberId));

        Assert.Equal(None, joined.Error);
        Assert.Equal(1, joined.Generation);
        Assert.Equal(first.MemberId, joined.Leader);
        Assert.Equal("range", joined.Protocol);
        Assert.Single(joined.Members);
        var synced = await _groups.SyncAsync("g", 1, first.MemberId, [(first.MemberId, [1, 2, 3])]);
        Assert.Equal(None, synced.Error);
        Assert.Equal([1, 2, 3], synced.Assignment);
        Assert.Equal(None, _groups.Heartbeat("g", 1, first.MemberId));
        Assert.True(_groups.HasMembers("g"));
    }

    [Fact]
    public async Task A_second_member_starts_a_rebalance_the_first_learns_of_by_heartbeat_and_old_generations_are_fenced()
    {
        string a = await FormAsync();
        var bJoin = _groups.JoinAsync(Join((await _groups.JoinAsync(Join(""))).MemberId));
        Assert.False(bJoin.IsCompleted); // waits for a to rejoin

        Assert.Equal(RebalanceInProgress, _groups.Heartbeat("g", 1, a));
        var aJoin = await _groups.JoinAsync(Join(a));
        var b = await bJoin;

        Assert.Equal(2, aJoin.Generation);
        Assert.Equal(2, b.Generation);
        Assert.Equal(a, aJoin.Leader);
        Assert.Equal(2, aJoin.Members.Count); // the leader sees everyone's subscription
        Assert.Empty(b.Members);
        var bSync = _groups.SyncAsync("g", 2, b.MemberId, []);
        Assert.False(bSync.IsCompleted); // waits for the leader's assignment
        await _groups.SyncAsync("g", 2, a, [(a, [1]), (b.MemberId, [2])]);
        Assert.Equal([2], (await bSync).Assignment);

        Assert.Equal(IllegalGeneration, _groups.CheckCommit("g", 1, a));
        Assert.Equal(UnknownMemberId, _groups.CheckCommit("g", 2, "someone-else"));
        Assert.Equal(None, _groups.CheckCommit("g", 2, b.MemberId));
        Assert.Equal(IllegalGeneration, _groups.Heartbeat("g", 1, b.MemberId));
    }

    [Fact]
    public async Task A_silent_member_is_removed_after_its_session_and_a_group_without_members_takes_any_commit()
    {
        string a = await FormAsync();
        Assert.Equal(UnknownMemberId, _groups.CheckCommit("g", -1, ""));

        _time.Advance(TimeSpan.FromMilliseconds(6_500));

        Assert.False(_groups.HasMembers("g"));
        Assert.Equal(UnknownMemberId, _groups.Heartbeat("g", 1, a));
        Assert.Equal(None, _groups.CheckCommit("g", -1, ""));
    }

    [Fact]
    public async Task Leaving_hands_the_partitions_to_the_others_in_a_new_generation()
    {
        string a = await FormAsync();
        var bJoin = _groups.JoinAsync(Join((await _groups.JoinAsync(Join(""))).MemberId));
        await _groups.JoinAsync(Join(a));
        string b = (await bJoin).MemberId;

        Assert.Equal(None, _groups.Leave("g", a));

        Assert.Equal(RebalanceInProgress, _groups.Heartbeat("g", 2, b));
        var rejoined = await _groups.JoinAsync(Join(b));
        Assert.Equal(3, rejoined.Generation);
        Assert.Equal(b, rejoined.Leader);
        Assert.Equal(UnknownMemberId, _groups.Leave("g", a));
    }

    private async Task<string> FormAsync()
    {
        string id = (await _groups.JoinAsync(Join(""))).MemberId;
        var joined = await _groups.JoinAsync(Join(id));
        await _groups.SyncAsync("g", joined.Generation, id, [(id, [])]);
        return id;
    }

    private static JoinRequest Join(string memberId) =>
        new("g", 6_000, 10_000, memberId, null, "consumer", [("range", [0]), ("roundrobin", [1])], "client", "/127.0.0.1", RequireKnownMemberId: true);
}
