namespace Gateway.KafkaProtocol.Groups;

/// <summary>The states of a classic Kafka consumer group.</summary>
internal enum GroupState
{
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

/// <summary>One group of Kafka clients: its members, generation, chosen protocol and leader (guarded by the coordinator's lock).</summary>
internal sealed class KafkaGroup(string id)
{
    public string Id { get; } = id;

    public GroupState State { get; set; } = GroupState.Empty;

    public int Generation { get; set; }

    public string? ProtocolType { get; set; }

    public string? Protocol { get; set; }

    public string? Leader { get; set; }

    public Dictionary<string, KafkaMember> Members { get; } = new(StringComparer.Ordinal);

    /// <summary>Member ids handed out with MEMBER_ID_REQUIRED that have not joined yet.</summary>
    public HashSet<string> Pending { get; } = new(StringComparer.Ordinal);

    /// <summary>Ends the join phase when the rebalance timeout passes before every member has rejoined.</summary>
    public ITimer? RebalanceTimer { get; set; }
}

/// <summary>A member of a Kafka group.</summary>
internal sealed class KafkaMember(string id)
{
    public string Id { get; } = id;

    public string? InstanceId { get; set; }

    public string ClientId { get; set; } = "";

    public string ClientHost { get; set; } = "";

    public int SessionTimeoutMs { get; set; }

    public int RebalanceTimeoutMs { get; set; }

    public List<(string Name, byte[] Metadata)> Protocols { get; set; } = [];

    public byte[] Assignment { get; set; } = [];

    public long LastSeen { get; set; }

    /// <summary>Set while the member waits in JoinGroup for the join phase to end.</summary>
    public TaskCompletionSource<JoinOutcome>? JoinWaiter { get; set; }

    /// <summary>Set while the member waits in SyncGroup for the leader's assignment.</summary>
    public TaskCompletionSource<SyncOutcome>? SyncWaiter { get; set; }

    public byte[]? MetadataFor(string protocol) => Protocols.FirstOrDefault(p => p.Name == protocol).Metadata;
}

/// <summary>What JoinGroup answers a member.</summary>
internal sealed record JoinOutcome(short Error, int Generation, string Protocol, string Leader, string MemberId, IReadOnlyList<(string MemberId, string? InstanceId, byte[] Metadata)> Members);

/// <summary>What SyncGroup answers a member.</summary>
internal sealed record SyncOutcome(short Error, byte[] Assignment);
