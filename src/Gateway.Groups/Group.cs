using Gateway.Storage;

namespace Gateway.Groups;

/// <summary>A group's live state; guarded by the coordinator's lock.</summary>
internal sealed class Group(string name)
{
    public string Name { get; } = name;

    public long Generation { get; set; }

    public Dictionary<string, Member> Members { get; } = new(StringComparer.Ordinal);

    public Dictionary<TopicPartition, long> Committed { get; } = [];

    /// <summary>Raised by every offset reset, so positions read before it cannot overwrite it.</summary>
    public long ResetVersion { get; set; }

    /// <summary>Completed (and replaced) whenever what some member may hold changes, to wake waiting fetches.</summary>
    public TaskCompletionSource Changed { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void SignalChange()
    {
        var previous = Changed;
        Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        previous.TrySetResult();
    }

    /// <summary>Partitions of the member's target that no other member still holds.</summary>
    public List<TopicPartition> Grantable(Member member)
    {
        var heldElsewhere = Members.Values.Where(m => m != member).SelectMany(m => m.Owned).ToHashSet();
        return [.. member.Target.Where(tp => !heldElsewhere.Contains(tp)).Order()];
    }
}

/// <summary>A member's live state: its lease, its target assignment, what it holds now, and its fetch positions.</summary>
internal sealed class Member(string id)
{
    public string Id { get; } = id;

    /// <summary>The principal that made the member; only it may name the member (null: made before owners were kept).</summary>
    public string? Owner { get; init; }

    /// <summary>Whether <paramref name="caller"/> may act as this member: its owner, or anyone where either side names none.</summary>
    public bool IsOwnedBy(string? caller) => caller is null || Owner is null || Owner == caller;

    public HashSet<string> Topics { get; set; } = new(StringComparer.Ordinal);

    public int SessionTimeoutMs { get; set; }

    public OffsetReset AutoOffsetReset { get; set; }

    public DateTimeOffset LeaseExpiresAt { get; set; }

    /// <summary>What the last rebalance gives this member.</summary>
    public List<TopicPartition> Target { get; set; } = [];

    /// <summary>What the member has been told it holds and may read; released only when it learns otherwise or expires.</summary>
    public HashSet<TopicPartition> Owned { get; set; } = [];

    /// <summary>Next offset to fetch per partition in this member's session; absent means start from the committed offset.</summary>
    public Dictionary<TopicPartition, long> Positions { get; } = [];
}
