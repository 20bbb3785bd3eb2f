using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Groups;

/// <summary>
/// Kafka's classic group protocol for Kafka clients: members join (JoinGroup) and wait until every member has
/// rejoined or the rebalance timeout passes; the generation then rises, the leader receives every member's
/// subscription and sends back the assignment it computed (SyncGroup), which the others wait for. Heartbeats keep a
/// member and tell it of a rebalance (REBALANCE_IN_PROGRESS); a member silent past its session timeout is removed.
/// Membership lives in memory (a restart makes every client rejoin, as a coordinator move does in Kafka); committed
/// offsets live in the store the HTTP groups use. Fencing: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
/// REBALANCE_IN_PROGRESS, as Kafka answers them.
/// </summary>
public sealed class KafkaGroupCoordinator : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, KafkaGroup> _groups = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ITimer _sweep;

    public KafkaGroupCoordinator(TimeProvider time)
    {
        _time = time;
        _sweep = time.CreateTimer(_ => Sweep(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    /// <summary>Whether Kafka clients are members of the group now (HTTP may not join it meanwhile).</summary>
    public bool HasMembers(string group)
    {
        lock (_lock)
        {
            return _groups.TryGetValue(group, out var g) && g.Members.Count > 0;
        }
    }

    internal Task<JoinOutcome> JoinAsync(JoinRequest request)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(request.Group, out var g))
            {
                g = new KafkaGroup(request.Group);
                _groups[request.Group] = g;
            }
            if (g.Members.Count > 0 && (g.ProtocolType != request.ProtocolType
                || !request.Protocols.Any(p => g.Members.Values.All(m => m.Id == request.MemberId || m.MetadataFor(p.Name) is not null))))
            {
                return Task.FromResult(Failed(ErrorCode.InconsistentGroupProtocol, request.MemberId));
            }
            string memberId = request.MemberId;
            if (memberId.Length == 0)
            {
                if (request.InstanceId is { } instance && g.Members.Values.FirstOrDefault(m => m.InstanceId == instance) is { } known)
                {
                    memberId = known.Id; // a static member coming back takes its place
                }
                else
                {
                    memberId = $"{(request.ClientId.Length > 0 ? request.ClientId : "member")}-{Guid.NewGuid():N}";
                    if (request.RequireKnownMemberId)
                    {
                        g.Pending.Add(memberId);
                        return Task.FromResult(Failed(ErrorCode.MemberIdRequired, memberId));
                    }
                }
            }
            else if (!g.Members.ContainsKey(memberId) && !g.Pending.Remove(memberId))
            {
                return Task.FromResult(Failed(ErrorCode.UnknownMemberId, memberId));
            }
            if (!g.Members.TryGetValue(memberId, out var member))
            {
                member = new KafkaMember(memberId);
                g.Members[memberId] = member;
            }
            member.InstanceId = request.InstanceId;
            member.ClientId = request.ClientId;
            member.ClientHost = request.ClientHost;
            member.SessionTimeoutMs = request.SessionTimeoutMs;
            member.RebalanceTimeoutMs = request.RebalanceTimeoutMs > 0 ? request.RebalanceTimeoutMs : request.SessionTimeoutMs;
            member.Protocols = request.Protocols;
            member.LastSeen = Now;
            g.ProtocolType = request.ProtocolType;
            member.JoinWaiter?.TrySetResult(Failed(ErrorCode.UnknownMemberId, memberId)); // an older join of the same member
            member.JoinWaiter = new TaskCompletionSource<JoinOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
            var waiter = member.JoinWaiter.Task;
            if (g.State != GroupState.PreparingRebalance)
            {
                BeginRebalance(g);
            }
            TryCompleteJoin(g);
            return waiter;
        }
    }

    internal Task<SyncOutcome> SyncAsync(string group, int generation, string memberId, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g) || !g.Members.TryGetValue(memberId, out var member))
            {
                return Task.FromResult(new SyncOutcome(ErrorCode.UnknownMemberId, []));
            }
            if (generation != g.Generation)
            {
                return Task.FromResult(new SyncOutcome(ErrorCode.IllegalGeneration, []));
            }
            member.LastSeen = Now;
            switch (g.State)
            {
                case GroupState.Stable:
                    return Task.FromResult(new SyncOutcome(ErrorCode.None, member.Assignment));
                case GroupState.CompletingRebalance when memberId == g.Leader:
                    foreach (var (id, assignment) in assignments)
                    {
                        if (g.Members.TryGetValue(id, out var assigned))
                        {
                            assigned.Assignment = assignment;
                        }
                    }
                    g.State = GroupState.Stable;
                    foreach (var other in g.Members.Values)
                    {
                        other.SyncWaiter?.TrySetResult(new SyncOutcome(ErrorCode.None, other.Assignment));
                        other.SyncWaiter = null;
                    }
                    return Task.FromResult(new SyncOutcome(ErrorCode.None, member.Assignment));
                case GroupState.CompletingRebalance:
                    member.SyncWaiter ??= new TaskCompletionSource<SyncOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
                    return member.SyncWaiter.Task;
                default:
                    return Task.FromResult(new SyncOutcome(ErrorCode.RebalanceInProgress, []));
            }
        }
    }

    internal short Heartbeat(string group, int generation, string memberId)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g) || !g.Members.TryGetValue(memberId, out var member))
            {
                return ErrorCode.UnknownMemberId;
            }
            member.LastSeen = Now;
            if (g.State == GroupState.PreparingRebalance)
            {
                return ErrorCode.RebalanceInProgress;
            }
            return generation != g.Generation ? ErrorCode.IllegalGeneration : ErrorCode.None;
        }
    }

    internal short Leave(string group, string memberId)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g) || !g.Members.TryGetValue(memberId, out var member))
            {
                return ErrorCode.UnknownMemberId;
            }
            Remove(g, member);
            return ErrorCode.None;
        }
    }

    /// <summary>
    /// Whether a commit of this member and generation may land: a group without members takes commits from anyone
    /// (generation -1: a consumer that assigns itself, or an admin tool); otherwise the member must be known and in the
    /// group's generation, and not in the middle of the assignment.
    /// </summary>
    internal short CheckCommit(string group, int generation, string memberId)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g) || g.Members.Count == 0)
            {
                return generation < 0 ? ErrorCode.None : ErrorCode.UnknownMemberId;
            }
            if (!g.Members.TryGetValue(memberId, out var member))
            {
                return ErrorCode.UnknownMemberId;
            }
            if (generation != g.Generation)
            {
                return ErrorCode.IllegalGeneration;
            }
            member.LastSeen = Now;
            return g.State == GroupState.CompletingRebalance ? ErrorCode.RebalanceInProgress : ErrorCode.None;
        }
    }

    internal IReadOnlyList<(string Group, string ProtocolType)> List()
    {
        lock (_lock)
        {
            return [.. _groups.Values.Where(g => g.Members.Count > 0).OrderBy(g => g.Id, StringComparer.Ordinal).Select(g => (g.Id, g.ProtocolType ?? ""))];
        }
    }

    internal GroupSnapshot? Describe(string group)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g))
            {
                return null;
            }
            return new GroupSnapshot(
                g.State switch
                {
                    GroupState.Empty => "Empty",
                    GroupState.PreparingRebalance => "PreparingRebalance",
                    GroupState.CompletingRebalance => "CompletingRebalance",
                    _ => "Stable",
                },
                g.ProtocolType ?? "",
                g.Protocol ?? "",
                [.. g.Members.Values.Select(m => (m.Id, m.InstanceId, m.ClientId, m.ClientHost, g.Protocol is { } p ? m.MetadataFor(p) ?? [] : [], m.Assignment))]);
        }
    }

    public void Dispose()
    {
        _sweep.Dispose();
        lock (_lock)
        {
            foreach (var g in _groups.Values)
            {
                g.RebalanceTimer?.Dispose();
            }
        }
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static JoinOutcome Failed(short error, string memberId) => new(error, -1, "", "", memberId, []);

    /// <summary>Starts a rebalance: members waiting for an assignment are told to rejoin; the join phase ends when all have, or at the longest rebalance timeout.</summary>
    private void BeginRebalance(KafkaGroup g)
    {
        g.State = GroupState.PreparingRebalance;
        foreach (var member in g.Members.Values)
        {
            member.SyncWaiter?.TrySetResult(new SyncOutcome(ErrorCode.RebalanceInProgress, []));
            member.SyncWaiter = null;
        }
        int timeout = g.Members.Count == 0 ? 0 : g.Members.Values.Max(m => m.RebalanceTimeoutMs);
        g.RebalanceTimer?.Dispose();
        g.RebalanceTimer = _time.CreateTimer(
            _ =>
            {
                lock (_lock)
                {
                    if (g.State == GroupState.PreparingRebalance)
                    {
                        CompleteJoin(g);
                    }
                }
            },
            null,
            TimeSpan.FromMilliseconds(Math.Max(timeout, 1)),
            Timeout.InfiniteTimeSpan);
    }

    private static void TryCompleteJoin(KafkaGroup g)
    {
        if (g.State == GroupState.PreparingRebalance && g.Members.Values.All(m => m.JoinWaiter is not null))
        {
            CompleteJoin(g);
        }
    }

    /// <summary>Ends the join phase with the members that rejoined: the next generation, its protocol and leader.</summary>
    private static void CompleteJoin(KafkaGroup g)
    {
        g.RebalanceTimer?.Dispose();
        g.RebalanceTimer = null;
        foreach (var late in g.Members.Values.Where(m => m.JoinWaiter is null).ToList())
        {
            g.Members.Remove(late.Id);
        }
        g.Generation++;
        if (g.Members.Count == 0)
        {
            g.State = GroupState.Empty;
            g.Leader = null;
            g.Protocol = null;
            return;
        }
        var first = g.Members.Values.First();
        g.Protocol = first.Protocols.Select(p => p.Name).First(name => g.Members.Values.All(m => m.MetadataFor(name) is not null));
        if (g.Leader is null || !g.Members.ContainsKey(g.Leader))
        {
            g.Leader = first.Id;
        }
        g.State = GroupState.CompletingRebalance;
        var everyone = g.Members.Values.Select(m => (m.Id, m.InstanceId, m.MetadataFor(g.Protocol)!)).ToList();
        foreach (var member in g.Members.Values)
        {
            member.Assignment = [];
            member.JoinWaiter!.TrySetResult(new JoinOutcome(ErrorCode.None, g.Generation, g.Protocol, g.Leader, member.Id, member.Id == g.Leader ? everyone : []));
            member.JoinWaiter = null;
        }
    }

    private void Remove(KafkaGroup g, KafkaMember member)
    {
        g.Members.Remove(member.Id);
        member.JoinWaiter?.TrySetResult(Failed(ErrorCode.UnknownMemberId, member.Id));
        member.SyncWaiter?.TrySetResult(new SyncOutcome(ErrorCode.UnknownMemberId, []));
        if (g.Leader == member.Id)
        {
            g.Leader = null;
        }
        if (g.State == GroupState.PreparingRebalance)
        {
            if (g.Members.Count == 0)
            {
                CompleteJoin(g);
            }
            else
            {
                TryCompleteJoin(g);
            }
        }
        else if (g.Members.Count == 0)
        {
            g.State = GroupState.Empty;
            g.Generation++;
        }
        else
        {
            BeginRebalance(g);
        }
    }

    private void Sweep()
    {
        lock (_lock)
        {
            long now = Now;
            foreach (var g in _groups.Values)
            {
                foreach (var member in g.Members.Values.Where(m => m.JoinWaiter is null && now - m.LastSeen > m.SessionTimeoutMs).ToList())
                {
                    Remove(g, member);
                }
            }
        }
    }
}

/// <summary>A JoinGroup request, parsed.</summary>
internal sealed record JoinRequest(
    string Group, int SessionTimeoutMs, int RebalanceTimeoutMs, string MemberId, string? InstanceId, string ProtocolType,
    List<(string Name, byte[] Metadata)> Protocols, string ClientId, string ClientHost, bool RequireKnownMemberId);

/// <summary>A group as DescribeGroups shows it.</summary>
internal sealed record GroupSnapshot(string State, string ProtocolType, string Protocol, IReadOnlyList<(string MemberId, string? InstanceId, string ClientId, string ClientHost, byte[] Metadata, byte[] Assignment)> Members);
