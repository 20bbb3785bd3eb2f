using Gateway.Groups.Storage;
using Gateway.Storage;
using Microsoft.Extensions.Logging;

namespace Gateway.Groups;

/// <summary>
/// Consumer groups: members with leases, generations, assignments and committed offsets, kept in a <see cref="GroupStore"/>.
/// Guarantees: a partition is held by at most one member at a time (a partition moving from A to B is granted to
/// B only after A has seen the new generation or A's lease has expired); commits from unknown members, old
/// generations or for partitions the member does not hold are rejected and change nothing; every start raises
/// each group's generation, so nothing granted before a crash can commit after it; leases expire on schedule
/// even when no request arrives. Topics are known only by name and partition count.
/// </summary>
public sealed partial class GroupCoordinator : IGroupCoordinator
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Group> _groups;
    private readonly IGroupPersistence _store;
    private readonly GroupOptions _options;
    private readonly Func<string, int> _partitionCount;
    private readonly Func<string, bool> _topicExists;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer? _sweep;
    private readonly bool _replica;
    private bool _disposed;

    /// <param name="databasePath">the LiteDB file</param>
    /// <param name="options">lease bounds and sweep interval</param>
    /// <param name="partitionCount">partitions of a topic, 0 when it does not exist or cannot serve</param>
    /// <param name="time">the clock leases run on</param>
    /// <param name="logger">where membership changes are logged</param>
    /// <param name="topicExists">
    /// whether a topic exists, even one that cannot serve now (e.g. refused at start): the committed offsets of a topic
    /// that does not exist are removed at start, those of one that cannot serve are kept; default: it has partitions
    /// </param>
    public GroupCoordinator(string databasePath, GroupOptions options, Func<string, int> partitionCount, TimeProvider time, ILogger logger, Func<string, bool>? topicExists = null)
    {
        _options = options;
        _partitionCount = partitionCount;
        _topicExists = topicExists ?? (topic => partitionCount(topic) > 0);
        _time = time;
        _logger = logger;
        _store = GroupStore.Open(databasePath, time.GetUtcNow(), _topicExists, out _groups);
        _sweep = time.CreateTimer(_ => ExpireLeases(), null, TimeSpan.FromMilliseconds(options.SweepIntervalMs), TimeSpan.FromMilliseconds(options.SweepIntervalMs));
    }

    private GroupCoordinator(GroupOptions options, Func<string, int> partitionCount, TimeProvider clock, ILogger logger)
    {
        _options = options;
        _partitionCount = partitionCount;
        _topicExists = topic => partitionCount(topic) > 0;
        _time = clock;
        _logger = logger;
        _store = new ReplicatedPersistence();
        _groups = new Dictionary<string, Group>(StringComparer.Ordinal);
        _replica = true;
    }

    /// <summary>
    /// A replica of groups kept elsewhere as a log of commands (the Kafka backend): the caller applies every command in
    /// the log's order, with <paramref name="clock"/> set to the command's time, so that every node holding a replica
    /// reaches the same state. Nothing is written anywhere, no timer runs, and reads (describe, list) change nothing:
    /// leases expire only when a command (a tick) says so. Member ids are the caller's to choose (the command's).
    /// </summary>
    /// <param name="options">lease bounds</param>
    /// <param name="partitionCount">partitions of a topic as the log has told them (not a node's own view)</param>
    /// <param name="clock">the time of the command being applied</param>
    /// <param name="logger">where membership changes are logged</param>
    public static GroupCoordinator Replica(GroupOptions options, Func<string, int> partitionCount, TimeProvider clock, ILogger logger) =>
        new(options, partitionCount, clock, logger);

    /// <summary>
    /// Joins a member. With the <paramref name="memberId"/> of a member whose lease still runs, it takes that
    /// member's place without a rebalance (static membership) unless its topics changed. A member belongs to the
    /// <paramref name="owner"/> that made it (a principal's name): another owner naming it is told it does not exist
    /// (<see cref="UnknownMemberException"/>), here and in every call that names a member.
    /// </summary>
    public MemberAssignment Join(string group, string? memberId, IReadOnlyCollection<string> topics, int? sessionTimeoutMs, OffsetReset autoOffsetReset, string? owner = null)
    {
        int timeout = sessionTimeoutMs ?? _options.DefaultSessionTimeoutMs;
        if (timeout < _options.MinSessionTimeoutMs || timeout > _options.MaxSessionTimeoutMs)
        {
            throw new ArgumentOutOfRangeException(nameof(sessionTimeoutMs), $"sessionTimeoutMs is between {_options.MinSessionTimeoutMs} and {_options.MaxSessionTimeoutMs}.");
        }
        if (topics.Count == 0)
        {
            throw new ArgumentException("A member reads at least one topic.", nameof(topics));
        }
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            if (!_groups.TryGetValue(group, out var g))
            {
                g = new Group(group);
                _groups[group] = g;
            }
            Expire(g, now);
            var wanted = new HashSet<string>(topics, StringComparer.Ordinal);
            bool rebalance;
            if (memberId is not null && g.Members.TryGetValue(memberId, out var member))
            {
                if (!member.IsOwnedBy(owner))
                {
                    throw new UnknownMemberException(group, memberId);
                }
                rebalance = !member.Topics.SetEquals(wanted);
            }
            else
            {
                member = new Member(memberId ?? $"m-{Guid.NewGuid():N}") { Owner = owner };
                g.Members[member.Id] = member;
                rebalance = true;
                LogJoined(_logger, group, member.Id);
            }
            member.Topics = wanted;
            member.SessionTimeoutMs = timeout;
            member.AutoOffsetReset = autoOffsetReset;
            if (rebalance)
            {
                Rebalance(g);
            }
            var assignment = Touch(g, member, now);
            Save(g);
            return assignment;
        }
    }

    /// <summary>Renews the lease and tells the member its generation and what it holds now.</summary>
    public MemberAssignment Heartbeat(string group, string memberId, string? owner = null)
    {
        lock (_lock)
        {
            var (g, member, now) = Find(group, memberId, owner);
            return Touch(g, member, now);
        }
    }

    /// <summary>Removes the member at once; its partitions go to the others.</summary>
    public void Leave(string group, string memberId, string? owner = null)
    {
        lock (_lock)
        {
            var (g, member, _) = Find(group, memberId, owner);
            g.Members.Remove(member.Id);
            LogLeft(_logger, group, member.Id, "left");
            Rebalance(g);
            Save(g);
        }
    }

    /// <summary>
    /// Starts a member fetch: renews the lease and returns what the member holds with the offset to read from in
    /// each partition (its session position, else the committed offset, else null: apply <c>autoOffsetReset</c>),
    /// and a task that completes when the group's assignments change.
    /// </summary>
    public MemberFetchPlan BeginFetch(string group, string memberId, string? owner = null)
    {
        lock (_lock)
        {
            var (g, member, now) = Find(group, memberId, owner);
            var assignment = Touch(g, member, now);
            var positions = new Dictionary<TopicPartition, long?>();
            foreach (var tp in assignment.Assignments)
            {
                positions[tp] = member.Positions.TryGetValue(tp, out long position) ? position
                    : g.Committed.TryGetValue(tp, out long committed) ? committed
                    : null;
            }
            return new MemberFetchPlan(assignment, positions, g.Changed.Task, g.ResetVersion);
        }
    }

    /// <summary>
    /// Records how far a member has fetched, for partitions it still holds — unless the group's offsets were reset
    /// since the plan the fetch read with (<paramref name="resetVersion"/>): the reset wins.
    /// </summary>
    public void AdvancePositions(string group, string memberId, IReadOnlyDictionary<TopicPartition, long> nextOffsets, long resetVersion, string? owner = null)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g) || !g.Members.TryGetValue(memberId, out var member) || g.ResetVersion != resetVersion || !member.IsOwnedBy(owner))
            {
                return;
            }
            foreach (var (tp, offset) in nextOffsets)
            {
                if (member.Owned.Contains(tp))
                {
                    member.Positions[tp] = offset;
                }
            }
        }
    }

    /// <summary>
    /// Commits offsets (the next offset to read, Kafka's convention) for partitions the member holds in the
    /// current generation; with no offsets, commits everything fetched so far. All or nothing.
    /// </summary>
    public async Task<IReadOnlyDictionary<TopicPartition, long>> CommitAsync(
        string group, string memberId, long generation, IReadOnlyDictionary<TopicPartition, long>? offsets, string? owner = null)
    {
        Task written;
        lock (_lock)
        {
            var (g, member, now) = Find(group, memberId, owner);
            if (generation != g.Generation)
            {
                throw new StaleGenerationException(generation, g.Generation);
            }
            member.LeaseExpiresAt = now.AddMilliseconds(member.SessionTimeoutMs);
            offsets ??= member.Positions.Where(p => member.Owned.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value);
            List<TopicPartition>? notHeld = null;
            foreach (var tp in offsets.Keys)
            {
                if (!member.Owned.Contains(tp))
                {
                    (notHeld ??= []).Add(tp);
                }
            }
            if (notHeld is not null)
            {
                notHeld.Sort();
                throw new PartitionNotAssignedException(notHeld);
            }
            foreach (var (tp, offset) in offsets)
            {
                ArgumentOutOfRangeException.ThrowIfNegative(offset, nameof(offsets));
            }
            written = SaveOffsets(g, offsets);
        }
        await written.ConfigureAwait(false);
        return offsets;
    }

    /// <summary>Sets committed offsets (reprocessing); members reading those partitions restart from them.</summary>
    public Task ResetOffsetsAsync(string group, IReadOnlyDictionary<TopicPartition, long> offsets)
    {
        Task written;
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g))
            {
                g = new Group(group);
                _groups[group] = g;
                Save(g);
            }
            written = SaveOffsets(g, offsets);
            g.ResetVersion++;
            foreach (var member in g.Members.Values)
            {
                foreach (var tp in offsets.Keys)
                {
                    member.Positions.Remove(tp);
                }
            }
            g.SignalChange();
        }
        return written;
    }

    public GroupDescription Describe(string group)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g))
            {
                throw new GroupNotFoundException(group);
            }
            if (!_replica)
            {
                Expire(g, _time.GetUtcNow());
            }
            return DescriptionOf(g);
        }
    }

    public IReadOnlyList<GroupDescription> List()
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            return [.. _groups.Values.OrderBy(g => g.Name, StringComparer.Ordinal).Select(g =>
            {
                if (!_replica)
                {
                    Expire(g, now);
                }
                return DescriptionOf(g);
            })];
        }
    }

    /// <summary>Deletes a group without members, committed offsets included.</summary>
    public Task DeleteAsync(string group)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g))
            {
                throw new GroupNotFoundException(group);
            }
            Expire(g, _time.GetUtcNow());
            if (g.Members.Count > 0)
            {
                throw new GroupNotEmptyException(group, g.Members.Count);
            }
            _groups.Remove(group);
            return _store.Delete(group);
        }
    }

    /// <summary>A topic's partition count changed: groups reading it rebalance.</summary>
    public void OnTopicChanged(string topic)
    {
        lock (_lock)
        {
            foreach (var g in _groups.Values.Where(g => g.Members.Values.Any(m => m.Topics.Contains(topic))))
            {
                Rebalance(g);
                Save(g);
            }
        }
    }

    /// <summary>A topic was deleted: its committed offsets go, and groups reading it rebalance.</summary>
    public Task OnTopicDeletedAsync(string topic)
    {
        lock (_lock)
        {
            foreach (var g in _groups.Values)
            {
                foreach (var tp in g.Committed.Keys.Where(tp => tp.Topic == topic).ToList())
                {
                    g.Committed.Remove(tp);
                }
                foreach (var member in g.Members.Values)
                {
                    member.Owned.RemoveWhere(tp => tp.Topic == topic);
                    foreach (var tp in member.Positions.Keys.Where(tp => tp.Topic == topic).ToList())
                    {
                        member.Positions.Remove(tp);
                    }
                }
                if (g.Members.Values.Any(m => m.Topics.Contains(topic)))
                {
                    Rebalance(g);
                }
                Save(g);
            }
            return _store.DeleteTopicOffsets(topic);
        }
    }

    /// <summary>Expires every lease that has run out (also run by the background sweep).</summary>
    public void ExpireLeases()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            var now = _time.GetUtcNow();
            foreach (var g in _groups.Values)
            {
                try
                {
                    Expire(g, now);
                }
                catch (Exception ex) when (GroupStore.IsStoreFailure(ex))
                {
                    // A timer callback must not take the process down; the next sweep tries again.
                    LogSweepFailed(_logger, g.Name, ex.Message);
                }
            }
        }
    }

    /// <summary>Expires the leases of one group that have run out by the clock (a replica's tick command).</summary>
    public void ExpireLeases(string group)
    {
        lock (_lock)
        {
            if (_groups.TryGetValue(group, out var g))
            {
                Expire(g, _time.GetUtcNow());
            }
        }
    }

    /// <summary>Groups with a member whose lease ran out by <paramref name="now"/> and is still listed (a replica ticks them).</summary>
    public IReadOnlyList<string> GroupsWithExpiredLeases(DateTimeOffset now)
    {
        lock (_lock)
        {
            return [.. _groups.Values.Where(g => g.Members.Values.Any(m => m.LeaseExpiresAt <= now)).Select(g => g.Name)];
        }
    }

    /// <summary>The topics the group's members read (what a command about the group carries partition counts for).</summary>
    public IReadOnlyList<string> TopicsOf(string group)
    {
        lock (_lock)
        {
            return _groups.TryGetValue(group, out var g) ? [.. g.Members.Values.SelectMany(m => m.Topics).Distinct(StringComparer.Ordinal)] : [];
        }
    }

    public void Dispose()
    {
        _sweep?.Dispose();
        lock (_lock)
        {
            if (!_disposed)
            {
                _disposed = true;
                _store.Dispose();
            }
        }
    }

    ValueTask<MemberAssignment> IGroupCoordinator.JoinAsync(
        string group, string? memberId, IReadOnlyCollection<string> topics, int? sessionTimeoutMs, OffsetReset autoOffsetReset, string? owner) =>
        new(Join(group, memberId, topics, sessionTimeoutMs, autoOffsetReset, owner));

    ValueTask<MemberAssignment> IGroupCoordinator.HeartbeatAsync(string group, string memberId, string? owner) => new(Heartbeat(group, memberId, owner));

    ValueTask IGroupCoordinator.LeaveAsync(string group, string memberId, string? owner)
    {
        Leave(group, memberId, owner);
        return ValueTask.CompletedTask;
    }

    ValueTask<MemberFetchPlan> IGroupCoordinator.BeginFetchAsync(string group, string memberId, string? owner) => new(BeginFetch(group, memberId, owner));

    ValueTask IGroupCoordinator.AdvancePositionsAsync(string group, string memberId, IReadOnlyDictionary<TopicPartition, long> nextOffsets, long resetVersion, string? owner)
    {
        AdvancePositions(group, memberId, nextOffsets, resetVersion, owner);
        return ValueTask.CompletedTask;
    }

    ValueTask<GroupDescription> IGroupCoordinator.DescribeAsync(string group) => new(Describe(group));

    ValueTask<IReadOnlyList<GroupDescription>> IGroupCoordinator.ListAsync() => new(List());

    /// <summary>The member, when it exists and belongs to <paramref name="owner"/> (null: any); else it is unknown to the caller.</summary>
    private (Group Group, Member Member, DateTimeOffset Now) Find(string group, string memberId, string? owner)
    {
        var now = _time.GetUtcNow();
        if (!_groups.TryGetValue(group, out var g))
        {
            throw new UnknownMemberException(group, memberId);
        }
        Expire(g, now);
        return g.Members.TryGetValue(memberId, out var member) && member.IsOwnedBy(owner) ? (g, member, now) : throw new UnknownMemberException(group, memberId);
    }

    /// <summary>The member sees the current generation: it releases what it lost and takes what is free for it.</summary>
    private MemberAssignment Touch(Group g, Member member, DateTimeOffset now)
    {
        member.LeaseExpiresAt = now.AddMilliseconds(member.SessionTimeoutMs);
        var granted = g.Grantable(member);
        if (!member.Owned.SetEquals(granted))
        {
            bool released = member.Owned.Any(tp => !granted.Contains(tp));
            member.Owned = [.. granted];
            foreach (var tp in member.Positions.Keys.Where(tp => !member.Owned.Contains(tp)).ToList())
            {
                member.Positions.Remove(tp);
            }
            Save(g);
            if (released)
            {
                g.SignalChange();
            }
        }
        return new MemberAssignment(
            member.Id,
            g.Generation,
            granted,
            [.. member.Topics.Order(StringComparer.Ordinal)],
            member.AutoOffsetReset,
            member.LeaseExpiresAt,
            Math.Max(1, member.SessionTimeoutMs / 3));
    }

    private void Expire(Group g, DateTimeOffset now)
    {
        var expired = g.Members.Values.Where(m => m.LeaseExpiresAt <= now).ToList();
        if (expired.Count == 0)
        {
            return;
        }
        foreach (var member in expired)
        {
            g.Members.Remove(member.Id);
            LogLeft(_logger, g.Name, member.Id, "lease expired");
        }
        Rebalance(g);
        Save(g);
    }

    /// <summary>A new generation and new targets; members keep holding what they held until they see it.</summary>
    private void Rebalance(Group g)
    {
        g.Generation++;
        var subscriptions = g.Members.ToDictionary(m => m.Key, m => (IReadOnlySet<string>)m.Value.Topics, StringComparer.Ordinal);
        var counts = g.Members.Values.SelectMany(m => m.Topics).Distinct().ToDictionary(t => t, _partitionCount);
        var previous = g.Members.ToDictionary(m => m.Key, m => (IReadOnlyCollection<TopicPartition>)m.Value.Target, StringComparer.Ordinal);
        var targets = PartitionAssignor.Assign(subscriptions, counts, previous);
        foreach (var (id, member) in g.Members)
        {
            member.Target = [.. targets[id]];
            // A partition that no longer exists cannot be held.
            member.Owned.RemoveWhere(tp => tp.Partition >= counts.GetValueOrDefault(tp.Topic));
        }
        LogRebalanced(_logger, g.Name, g.Generation, g.Members.Count);
        g.SignalChange();
    }

    private static GroupDescription DescriptionOf(Group g) => new(
        g.Name,
        g.Generation,
        [.. g.Members.Values.OrderBy(m => m.Id, StringComparer.Ordinal).Select(m => new MemberDescription(
            m.Id,
            [.. m.Topics.Order(StringComparer.Ordinal)],
            [.. m.Owned.Order()],
            [.. m.Target.Where(tp => !m.Owned.Contains(tp)).Order()],
            m.LeaseExpiresAt,
            m.SessionTimeoutMs))],
        new Dictionary<TopicPartition, long>(g.Committed));

    private void Save(Group g) => _store.Save(g);

    /// <summary>Sets the offsets in memory now and queues them for the store; the task completes when they are written.</summary>
    private Task SaveOffsets(Group g, IReadOnlyDictionary<TopicPartition, long> offsets)
    {
        foreach (var (tp, offset) in offsets)
        {
            g.Committed[tp] = offset;
        }
        return _store.SaveOffsets(g.Name, offsets);
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Group {Group}: member {Member} joined")]
    private static partial void LogJoined(ILogger logger, string group, string member);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "Group {Group}: member {Member} removed ({Reason})")]
    private static partial void LogLeft(ILogger logger, string group, string member, string reason);

    [LoggerMessage(EventId = 403, Level = LogLevel.Error, Message = "Group {Group}: expiring leases failed: {Reason}")]
    private static partial void LogSweepFailed(ILogger logger, string group, string reason);

    [LoggerMessage(EventId = 402, Level = LogLevel.Information, Message = "Group {Group}: generation {Generation} with {Members} member(s)")]
    private static partial void LogRebalanced(ILogger logger, string group, long generation, int members);
}
