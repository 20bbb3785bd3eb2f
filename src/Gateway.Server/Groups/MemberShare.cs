using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.Server.Groups;

/// <summary>
/// A member reading its share of a group: the one place that decides where each partition it holds is read from,
/// follows its assignment from turn to turn, reads, and records how far it got. The member fetch endpoint takes one
/// turn per request (a new share each time: the session positions in the coordinator are the truth); the group SSE
/// stream keeps one share for the life of its connection.
/// </summary>
public sealed class MemberShare(IGroupCoordinator groups, ILogStorage store, string group, string memberId, string owner)
{
    private long _resetVersion = -1;

    /// <summary>Where each held partition is read from next.</summary>
    public Dictionary<TopicPartition, long> Positions { get; } = [];

    /// <summary>Whether the last turn found the group's offsets reset since the turn before (every position was taken anew).</summary>
    public bool OffsetsReset { get; private set; }

    /// <summary>
    /// Begins a turn: renews the lease and follows the assignment. Partitions no longer held are dropped; a partition
    /// newly held starts at its <paramref name="cursor"/> position (used once: a partition that comes back later
    /// continues from what was committed), else the member's session position, else the committed offset, else its
    /// <c>autoOffsetReset</c>, kept inside the partition's range (a move is added to <paramref name="resets"/>). After
    /// a reset of the group's offsets every position is taken anew and the cursor is forgotten: the reset wins.
    /// </summary>
    public async ValueTask<MemberFetchPlan> BeginTurnAsync(Dictionary<TopicPartition, long>? cursor, List<PositionReset> resets)
    {
        var plan = await groups.BeginFetchAsync(group, memberId, owner);
        OffsetsReset = plan.ResetVersion != _resetVersion && _resetVersion >= 0;
        if (plan.ResetVersion != _resetVersion)
        {
            Positions.Clear();
            if (OffsetsReset)
            {
                cursor?.Clear();
            }
            _resetVersion = plan.ResetVersion;
        }
        foreach (var tp in Positions.Keys)
        {
            if (!plan.Positions.ContainsKey(tp))
            {
                Positions.Remove(tp);
            }
        }
        foreach (var (tp, known) in plan.Positions)
        {
            if (Positions.ContainsKey(tp) || !store.TryGetTopic(tp.Topic, out var topic) || tp.Partition >= topic.PartitionCount)
            {
                continue;
            }
            var partition = topic.GetPartition(tp.Partition);
            long start = cursor is not null && cursor.Remove(tp, out long resumed) ? resumed
                : known ?? (plan.Assignment.AutoOffsetReset == OffsetReset.Earliest ? partition.BeginOffset : partition.EndOffset);
            Positions[tp] = await PositionRange.ClampAsync(tp, start, partition, resets);
        }
        return plan;
    }

    /// <summary>The held partition, by name.</summary>
    public IPartition PartitionOf(TopicPartition tp) => store.GetTopic(tp.Topic).GetPartition(tp.Partition);

    /// <summary>
    /// Reads up to the limits across the held partitions and moves <see cref="Positions"/> past what it read. It starts
    /// at a different partition each turn, so one busy partition cannot starve the others. The sets own pooled buffers.
    /// </summary>
    public async ValueTask<List<(TopicPartition Partition, RecordSet Records)>> ReadAsync(long generation, int maxRecords, int maxBytes, CancellationToken cancellationToken)
    {
        var sets = new List<(TopicPartition, RecordSet)>();
        int records = 0;
        long bytes = 0;
        var order = Positions.Keys.Order().ToList();
        int start = order.Count == 0 ? 0 : (int)((generation + (Environment.TickCount64 / 7)) % order.Count);
        for (int i = 0; i < order.Count && records < maxRecords && bytes < maxBytes; i++)
        {
            var tp = order[(start + i) % order.Count];
            var partition = PartitionOf(tp);
            if (partition.EndOffset <= Positions[tp])
            {
                continue;
            }
            var set = await partition.ReadAsync(Positions[tp], maxRecords - records, (int)Math.Max(1, maxBytes - bytes), cancellationToken);
            if (set.Count == 0)
            {
                set.Dispose();
                continue;
            }
            sets.Add((tp, set));
            records += set.Count;
            bytes += set.Bytes;
            Positions[tp] = set.NextOffset;
        }
        return sets;
    }

    /// <summary>Records how far the member has got: <paramref name="positions"/>, else <see cref="Positions"/>.</summary>
    public ValueTask AdvanceAsync(IReadOnlyDictionary<TopicPartition, long>? positions = null) =>
        groups.AdvancePositionsAsync(group, memberId, positions ?? Positions, _resetVersion, owner);

    /// <summary>
    /// Completes with the first of: a commit in a held partition (one that has not failed: waiting on it would spin;
    /// reads of it fail loudly) or one of <paramref name="others"/>. Partitions' commit signals are shared by all their
    /// readers, so a waiting member holds no registration per partition, only this one continuation.
    /// </summary>
    public Task<Task> WhenRecordOr(ReadOnlySpan<Task> others) => PositionRange.WhenRecordOr(Positions, PartitionOf, others);
}
