using Gateway.Storage;

namespace Gateway.Groups;

public sealed partial class GroupCoordinator
{
    /// <summary>Every group as it stands, for a replica's snapshot.</summary>
    public IReadOnlyList<GroupState> ExportState()
    {
        lock (_lock)
        {
            return [.. _groups.Values.OrderBy(g => g.Name, StringComparer.Ordinal).Select(g => new GroupState(
                g.Name,
                g.Generation,
                g.ResetVersion,
                [.. g.Members.Values.OrderBy(m => m.Id, StringComparer.Ordinal).Select(m => new MemberState(
                    m.Id,
                    m.Owner,
                    [.. m.Topics.Order(StringComparer.Ordinal)],
                    m.SessionTimeoutMs,
                    m.AutoOffsetReset,
                    m.LeaseExpiresAt,
                    [.. m.Target],
                    [.. m.Owned.Order()],
                    [.. m.Positions.OrderBy(p => p.Key).Select(p => new PartitionOffset(p.Key.Topic, p.Key.Partition, p.Value))]))],
                [.. g.Committed.OrderBy(c => c.Key).Select(c => new PartitionOffset(c.Key.Topic, c.Key.Partition, c.Value))]))];
        }
    }

    /// <summary>Replaces every group with <paramref name="groups"/> (a replica starting from a snapshot).</summary>
    public void ImportState(IEnumerable<GroupState> groups)
    {
        lock (_lock)
        {
            _groups.Clear();
            foreach (var state in groups)
            {
                var g = new Group(state.Name) { Generation = state.Generation, ResetVersion = state.ResetVersion };
                foreach (var m in state.Members)
                {
                    var member = new Member(m.Id)
                    {
                        Owner = m.Owner,
                        Topics = new HashSet<string>(m.Topics, StringComparer.Ordinal),
                        SessionTimeoutMs = m.SessionTimeoutMs,
                        AutoOffsetReset = m.AutoOffsetReset,
                        LeaseExpiresAt = m.LeaseExpiresAt,
                        Target = [.. m.Target],
                        Owned = [.. m.Owned],
                    };
                    foreach (var p in m.Positions)
                    {
                        member.Positions[new TopicPartition(p.Topic, p.Partition)] = p.Offset;
                    }
                    g.Members[m.Id] = member;
                }
                foreach (var c in state.Committed)
                {
                    g.Committed[new TopicPartition(c.Topic, c.Partition)] = c.Offset;
                }
                _groups[g.Name] = g;
            }
        }
    }
}
