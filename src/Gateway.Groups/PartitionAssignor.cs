using Gateway.Storage;

namespace Gateway.Groups;

/// <summary>
/// Decides which member reads which partition. Pure and deterministic (same input, same answer). Guarantees: every
/// partition of a subscribed topic goes to exactly one member subscribed to it; a member keeps what it had
/// wherever balance allows (sticky); partition counts of members sharing topics differ by at most one.
/// </summary>
public static class PartitionAssignor
{
    /// <param name="subscriptions">each member's topics</param>
    /// <param name="partitionCounts">partitions per topic; topics absent here have none</param>
    /// <param name="previous">what each member held before</param>
    public static IReadOnlyDictionary<string, IReadOnlyList<TopicPartition>> Assign(
        IReadOnlyDictionary<string, IReadOnlySet<string>> subscriptions,
        IReadOnlyDictionary<string, int> partitionCounts,
        IReadOnlyDictionary<string, IReadOnlyCollection<TopicPartition>> previous)
    {
        var members = subscriptions.Keys.Order(StringComparer.Ordinal).ToList();
        var held = members.ToDictionary(m => m, _ => new SortedSet<TopicPartition>());
        if (members.Count == 0)
        {
            return held.ToDictionary(h => h.Key, h => (IReadOnlyList<TopicPartition>)[]);
        }

        var all = new SortedSet<TopicPartition>();
        foreach (string topic in subscriptions.Values.SelectMany(t => t).Distinct())
        {
            for (int p = 0; p < partitionCounts.GetValueOrDefault(topic); p++)
            {
                all.Add(new TopicPartition(topic, p));
            }
        }

        // Keep what each member had, while it still exists, the member still reads its topic, and nobody kept it first.
        var taken = new HashSet<TopicPartition>();
        foreach (string member in members)
        {
            if (!previous.TryGetValue(member, out var had))
            {
                continue;
            }
            foreach (var tp in had.Order())
            {
                if (all.Contains(tp) && subscriptions[member].Contains(tp.Topic) && taken.Add(tp))
                {
                    held[member].Add(tp);
                }
            }
        }

        // Give out the rest, each to the least loaded member that reads its topic.
        foreach (var tp in all.Where(tp => !taken.Contains(tp)))
        {
            string target = members.Where(m => subscriptions[m].Contains(tp.Topic)).MinBy(m => held[m].Count)!;
            held[target].Add(tp);
        }

        // Even out: move partitions from the most to the least loaded member that can read them, one at a time.
        for (int moves = 0; moves < all.Count * members.Count; moves++)
        {
            if (!TryMoveOne(members, subscriptions, held))
            {
                break;
            }
        }
        return held.ToDictionary(h => h.Key, h => (IReadOnlyList<TopicPartition>)[.. h.Value]);
    }

    private static bool TryMoveOne(List<string> members, IReadOnlyDictionary<string, IReadOnlySet<string>> subscriptions, Dictionary<string, SortedSet<TopicPartition>> held)
    {
        foreach (string from in members.OrderByDescending(m => held[m].Count))
        {
            foreach (string to in members.Where(m => held[m].Count + 1 < held[from].Count).OrderBy(m => held[m].Count))
            {
                // The highest partition moves: low partitions stay put, which keeps answers stable and readable.
                var movable = held[from].Reverse().FirstOrDefault(tp => subscriptions[to].Contains(tp.Topic));
                if (movable.Topic is not null)
                {
                    held[from].Remove(movable);
                    held[to].Add(movable);
                    return true;
                }
            }
        }
        return false;
    }
}
