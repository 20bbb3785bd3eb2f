using Gateway.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Groups.Tests;

/// <summary>The coordinator against real LiteDB in a temporary folder, on a clock the test controls.</summary>
public sealed class GroupCoordinatorTests : IDisposable
{
    private readonly TempDirectory _directory = new("gateway-groups-tests");
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly Dictionary<string, int> _partitions = new() { ["t"] = 6, ["u"] = 2 };
    private GroupCoordinator _coordinator;

    public GroupCoordinatorTests()
    {
        _coordinator = Open();
    }

    public void Dispose()
    {
        _coordinator.Dispose();
        _directory.Dispose();
    }

    private GroupCoordinator Open() => new(
        Path.Combine(_directory.Path, "groups.db"),
        new GroupOptions { MinSessionTimeoutMs = 100 },
        topic => _partitions.GetValueOrDefault(topic),
        _time,
        NullLogger.Instance);

    private void Restart()
    {
        _coordinator.Dispose();
        _coordinator = Open();
    }

    private MemberAssignment Join(string member, params string[] topics) =>
        _coordinator.Join("g", member, topics.Length == 0 ? ["t"] : topics, 10_000, OffsetReset.Earliest);

    private void AssertNoPartitionHeldTwice()
    {
        var held = _coordinator.Describe("g").Members.SelectMany(m => m.Assignments).ToList();
        Assert.Equal(held.Count, held.Distinct().Count());
    }

    // The coordinator writes offsets through its group-commit writer; these wait for the write, as the API does.
    private IReadOnlyDictionary<TopicPartition, long> Commit(string group, string member, long generation, IReadOnlyDictionary<TopicPartition, long>? offsets) =>
        _coordinator.CommitAsync(group, member, generation, offsets).GetAwaiter().GetResult();

    private void ResetOffsets(string group, IReadOnlyDictionary<TopicPartition, long> offsets) =>
        _coordinator.ResetOffsetsAsync(group, offsets).GetAwaiter().GetResult();

    private void DeleteGroup(string group) => _coordinator.DeleteAsync(group).GetAwaiter().GetResult();

    [Fact]
    public void A_partition_moves_to_a_new_member_only_after_its_holder_has_seen_the_new_generation()
    {
        var a = Join("a");
        Assert.Equal(6, a.Assignments.Count);

        var b = Join("b");
        Assert.Equal(a.Generation + 1, b.Generation);
        Assert.Empty(b.Assignments); // a still holds everything until it hears of generation 2
        AssertNoPartitionHeldTwice();

        var aAgain = _coordinator.Heartbeat("g", "a");
        Assert.Equal(3, aAgain.Assignments.Count);
        var bAgain = _coordinator.Heartbeat("g", "b");
        Assert.Equal(3, bAgain.Assignments.Count);
        Assert.Empty(aAgain.Assignments.Intersect(bAgain.Assignments));
        AssertNoPartitionHeldTwice();
    }

    [Fact]
    public void A_silent_member_expires_on_schedule_and_its_late_commit_is_rejected()
    {
        Join("a");
        Join("b");
        _coordinator.Heartbeat("g", "a");
        var b = _coordinator.Heartbeat("g", "b");
        var bPartition = b.Assignments[0];
        Commit("g", "b", b.Generation, new Dictionary<TopicPartition, long> { [bPartition] = 5 });

        for (int i = 0; i < 9; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            _coordinator.Heartbeat("g", "a");
        }
        _time.Advance(TimeSpan.FromSeconds(2)); // b has now been silent for 11 s of its 10 s lease; the sweep runs on its own
        Assert.Equal(["a"], _coordinator.Describe("g").Members.Select(m => m.MemberId));

        Assert.Throws<UnknownMemberException>(() => Commit("g", "b", b.Generation, new Dictionary<TopicPartition, long> { [bPartition] = 99 }));
        Assert.Equal(5, _coordinator.Describe("g").CommittedOffsets[bPartition]);
        Assert.Equal(6, _coordinator.Heartbeat("g", "a").Assignments.Count);
    }

    [Fact]
    public void Commits_from_an_old_generation_or_for_partitions_not_held_change_nothing()
    {
        var a = Join("a");
        Join("b");
        var stale = Assert.Throws<StaleGenerationException>(() => Commit("g", "a", a.Generation, new Dictionary<TopicPartition, long> { [a.Assignments[0]] = 1 }));
        Assert.Equal(a.Generation + 1, stale.Current);

        var current = _coordinator.Heartbeat("g", "a");
        var notMine = new TopicPartition("t", Enumerable.Range(0, 6).First(p => !current.Assignments.Contains(new TopicPartition("t", p))));
        Assert.Throws<PartitionNotAssignedException>(() => Commit("g", "a", current.Generation, new Dictionary<TopicPartition, long>
        {
            [current.Assignments[0]] = 7,
            [notMine] = 7,
        }));
        Assert.Empty(_coordinator.Describe("g").CommittedOffsets);

        Commit("g", "a", current.Generation, new Dictionary<TopicPartition, long> { [current.Assignments[0]] = 7 });
        Assert.Equal(7, _coordinator.Describe("g").CommittedOffsets[current.Assignments[0]]);
    }

    [Fact]
    public void Rejoining_with_the_same_member_id_within_the_lease_keeps_the_place_without_a_rebalance()
    {
        var first = Join("static-1");
        Join("static-2");
        var settled = _coordinator.Heartbeat("g", "static-1");
        _time.Advance(TimeSpan.FromSeconds(5));
        var again = Join("static-1");
        Assert.Equal(settled.Generation, again.Generation);
        Assert.Equal(settled.Assignments, again.Assignments);
        Assert.True(again.Generation > first.Generation);
    }

    [Fact]
    public void A_restart_raises_the_generation_and_keeps_committed_offsets()
    {
        var a = Join("a");
        Commit("g", "a", a.Generation, new Dictionary<TopicPartition, long> { [new TopicPartition("t", 2)] = 42 });
        Restart();
        Assert.Throws<StaleGenerationException>(() => Commit("g", "a", a.Generation, new Dictionary<TopicPartition, long> { [new TopicPartition("t", 2)] = 50 }));
        var description = _coordinator.Describe("g");
        Assert.Equal(a.Generation + 1, description.Generation);
        Assert.Equal(42, description.CommittedOffsets[new TopicPartition("t", 2)]);
        var renewed = _coordinator.Heartbeat("g", "a");
        Assert.Equal(6, renewed.Assignments.Count);
        Commit("g", "a", renewed.Generation, new Dictionary<TopicPartition, long> { [new TopicPartition("t", 2)] = 50 });
    }

    [Fact]
    public void A_commit_without_offsets_commits_what_was_fetched_and_a_reset_moves_members()
    {
        var a = Join("a");
        var plan = _coordinator.BeginFetch("g", "a");
        Assert.All(plan.Positions.Values, p => Assert.Null(p));
        _coordinator.AdvancePositions("g", "a", new Dictionary<TopicPartition, long> { [new TopicPartition("t", 0)] = 10, [new TopicPartition("t", 1)] = 3 }, plan.ResetVersion);
        var committed = Commit("g", "a", a.Generation, null);
        Assert.Equal(10, committed[new TopicPartition("t", 0)]);
        Assert.Equal(3, _coordinator.Describe("g").CommittedOffsets[new TopicPartition("t", 1)]);

        var changed = _coordinator.BeginFetch("g", "a").AssignmentChanged;
        ResetOffsets("g", new Dictionary<TopicPartition, long> { [new TopicPartition("t", 0)] = 0 });
        Assert.True(changed.IsCompleted);
        Assert.Equal(0, _coordinator.BeginFetch("g", "a").Positions[new TopicPartition("t", 0)]);
        Assert.Equal(3, _coordinator.BeginFetch("g", "a").Positions[new TopicPartition("t", 1)]);

        // A fetch that read before the reset cannot overwrite it.
        _coordinator.AdvancePositions("g", "a", new Dictionary<TopicPartition, long> { [new TopicPartition("t", 0)] = 11 }, plan.ResetVersion);
        Assert.Equal(0, _coordinator.BeginFetch("g", "a").Positions[new TopicPartition("t", 0)]);
    }

    [Fact]
    public async Task Growing_a_topic_rebalances_and_deleting_it_drops_its_offsets()
    {
        var a = Join("a", "t", "u");
        Assert.Equal(8, a.Assignments.Count);
        Commit("g", "a", a.Generation, new Dictionary<TopicPartition, long> { [new TopicPartition("u", 0)] = 4 });
        _partitions["u"] = 4;
        _coordinator.OnTopicChanged("u");
        Assert.Equal(10, _coordinator.Heartbeat("g", "a").Assignments.Count);

        _partitions.Remove("u");
        await _coordinator.OnTopicDeletedAsync("u");
        Assert.Equal(6, _coordinator.Heartbeat("g", "a").Assignments.Count);
        Assert.Empty(_coordinator.Describe("g").CommittedOffsets);
        Restart();
        Assert.Empty(_coordinator.Describe("g").CommittedOffsets);
    }

    [Fact]
    public void A_group_is_deleted_only_without_members()
    {
        Join("a");
        Assert.Throws<GroupNotEmptyException>(() => DeleteGroup("g"));
        _coordinator.Leave("g", "a");
        DeleteGroup("g");
        Assert.Throws<GroupNotFoundException>(() => _coordinator.Describe("g"));
        Restart();
        Assert.Empty(_coordinator.List());
    }

    [Fact]
    public void Session_timeouts_out_of_bounds_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _coordinator.Join("g", null, ["t"], 10, OffsetReset.Earliest));
        Assert.Throws<ArgumentOutOfRangeException>(() => _coordinator.Join("g", null, ["t"], 10_000_000, OffsetReset.Earliest));
    }

    [Fact]
    public void Many_members_joining_and_leaving_never_share_a_partition()
    {
        var random = new Random(3);
        var members = new List<string>();
        for (int step = 0; step < 200; step++)
        {
            int action = random.Next(3);
            if (action == 0 || members.Count == 0)
            {
                string id = $"m{step}";
                Join(id);
                members.Add(id);
            }
            else if (action == 1)
            {
                string id = members[random.Next(members.Count)];
                _coordinator.Leave("g", id);
                members.Remove(id);
            }
            else
            {
                _coordinator.Heartbeat("g", members[random.Next(members.Count)]);
            }
            AssertNoPartitionHeldTwice();
        }
        foreach (string id in members)
        {
            _coordinator.Heartbeat("g", id);
        }
        foreach (string id in members)
        {
            _coordinator.Heartbeat("g", id);
        }
        Assert.Equal(6, _coordinator.Describe("g").Members.Sum(m => m.Assignments.Count));
    }

    [Fact]
    public async Task Concurrent_commits_share_transactions_and_the_store_keeps_the_last_in_order()
    {
        var a = Join("a", "t", "u");
        var tp = new TopicPartition("t", 0);
        var commits = Enumerable.Range(1, 200).Select(n => Task.Run(() =>
            _coordinator.CommitAsync("g", "a", a.Generation, new Dictionary<TopicPartition, long> { [tp] = n }))).ToList();
        await Task.WhenAll(commits);
        long inMemory = _coordinator.Describe("g").CommittedOffsets[tp];
        Assert.InRange(inMemory, 1, 200);

        // A topic deleted after commits were queued: the deletion is written after them, so nothing comes back.
        var queued = _coordinator.CommitAsync("g", "a", a.Generation, new Dictionary<TopicPartition, long> { [new TopicPartition("u", 0)] = 1 });
        var deleted = _coordinator.OnTopicDeletedAsync("u");
        await queued;
        await deleted;
        Restart();
        var restored = _coordinator.Describe("g").CommittedOffsets;
        Assert.Equal(inMemory, restored[tp]);
        Assert.DoesNotContain(restored.Keys, k => k.Topic == "u");
    }

    [Fact]
    public async Task Commits_and_a_deletion_queued_together_are_written_in_the_order_they_happened()
    {
        var a = Join("a", "t", "u");
        var u0 = new TopicPartition("u", 0);
        // Queued without waiting, so they share the writer's batches: a commit, the topic's deletion, then an
        // offset set for the topic again (as after re-creating it). The store must end as memory did: the commit
        // before the deletion gone, the offset after it kept.
        var first = _coordinator.CommitAsync("g", "a", a.Generation, new Dictionary<TopicPartition, long> { [u0] = 1 });
        var deleted = _coordinator.OnTopicDeletedAsync("u");
        var again = _coordinator.ResetOffsetsAsync("g", new Dictionary<TopicPartition, long> { [new TopicPartition("u", 1)] = 9, [new TopicPartition("t", 1)] = 3 });
        var otherTopic = _coordinator.OnTopicDeletedAsync("v");
        await Task.WhenAll(first, deleted, again, otherTopic);
        var inMemory = _coordinator.Describe("g").CommittedOffsets;
        Restart();
        var restored = _coordinator.Describe("g").CommittedOffsets;
        Assert.Equal(inMemory.OrderBy(o => o.Key), restored.OrderBy(o => o.Key));
        Assert.False(restored.ContainsKey(u0));
        Assert.Equal(9, restored[new TopicPartition("u", 1)]);
        Assert.Equal(3, restored[new TopicPartition("t", 1)]);
    }

    [Fact]
    public void A_member_answers_only_to_its_owner_also_after_a_restart()
    {
        var alice = _coordinator.Join("g", "m-alice", ["t"], 10_000, OffsetReset.Earliest, owner: "alice");
        Assert.Throws<UnknownMemberException>(() => _coordinator.Join("g", "m-alice", ["u"], 10_000, OffsetReset.Earliest, owner: "bob"));
        Assert.Throws<UnknownMemberException>(() => _coordinator.Heartbeat("g", "m-alice", owner: "bob"));
        Assert.Throws<UnknownMemberException>(() => _coordinator.BeginFetch("g", "m-alice", owner: "bob"));
        Assert.Throws<UnknownMemberException>(() => _coordinator.Leave("g", "m-alice", owner: "bob"));
        Assert.Throws<UnknownMemberException>(() => _coordinator.CommitAsync("g", "m-alice", alice.Generation, null, owner: "bob").GetAwaiter().GetResult());
        Assert.Equal(["t"], _coordinator.Heartbeat("g", "m-alice", owner: "alice").Topics);

        Restart();
        Assert.Throws<UnknownMemberException>(() => _coordinator.Heartbeat("g", "m-alice", owner: "bob"));
        _coordinator.Leave("g", "m-alice", owner: "alice");
        Assert.Empty(_coordinator.Describe("g").Members);
    }

    [Fact]
    public void Offsets_of_a_topic_that_exists_but_cannot_serve_are_kept_at_start()
    {
        var member = Join("m1");
        Commit("g", "m1", member.Generation, new Dictionary<TopicPartition, long> { [new("t", 0)] = 5 });
        _coordinator.Dispose();
        // t is there but refused (no partitions to serve): its offsets stay; u is gone.
        _coordinator = new GroupCoordinator(
            Path.Combine(_directory.Path, "groups.db"), new GroupOptions { MinSessionTimeoutMs = 100 }, topic => 0, _time, NullLogger.Instance, topicExists: topic => topic == "t");
        Restart();
        Assert.Equal(5, _coordinator.Describe("g").CommittedOffsets[new("t", 0)]);
    }
}
