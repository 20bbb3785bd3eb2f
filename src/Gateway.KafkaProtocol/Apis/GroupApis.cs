using Gateway.KafkaProtocol.Groups;
using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// The classic group protocol's requests: FindCoordinator (0-2: this broker), JoinGroup (0-5), SyncGroup (0-3),
/// Heartbeat (0-3), LeaveGroup (0-3), ListGroups (0-2), DescribeGroups (0-4), answered by <see cref="KafkaGroupCoordinator"/>.
/// A group that HTTP members are using is refused to Kafka clients (INCONSISTENT_GROUP_PROTOCOL) while they hold it.
/// </summary>
internal static class GroupApis
{
    public static bool FindCoordinator(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, KafkaClientInfo client)
    {
        var reader = new KafkaReader(request.Body.Span);
        string key = reader.ReadString(); // every group and transactional id is coordinated here
        sbyte keyType = request.Version >= 1 ? reader.ReadInt8() : (sbyte)0;
        var (host, port) = MetadataApi.Advertised(broker.Options, client);
        if (request.Version >= 1)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        bool group = keyType == 0;
        bool allowed = !group || broker.Allows(request, KafkaResource.Group, key, KafkaOperation.Describe);
        group &= allowed;
        writer.WriteInt16(!allowed ? ErrorCode.GroupAuthorizationFailed : group ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable);
        if (request.Version >= 1)
        {
            writer.WriteNullableString(!allowed ? $"'{broker.PrincipalOf(request)}' may not see group '{key}'." : group ? null : "Transactions are not offered.");
        }
        writer.WriteInt32(group ? KafkaBroker.NodeId : -1);
        writer.WriteString(group ? host : "");
        writer.WriteInt32(group ? port : -1);
        return true;
    }

    public static async Task<bool> JoinGroupAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, KafkaClientInfo client)
    {
        short version = request.Version;
        var join = ParseJoin(request, client);
        JoinOutcome outcome;
        if (join.Group.Length == 0)
        {
            outcome = new JoinOutcome(ErrorCode.InvalidGroupId, -1, "", "", join.MemberId, []);
        }
        else if (!broker.Allows(request, KafkaResource.Group, join.Group, KafkaOperation.Consume))
        {
            outcome = new JoinOutcome(ErrorCode.GroupAuthorizationFailed, -1, "", "", join.MemberId, []);
        }
        else if (join.SessionTimeoutMs < broker.Options.MinSessionTimeoutMs || join.SessionTimeoutMs > broker.Options.MaxSessionTimeoutMs)
        {
            outcome = new JoinOutcome(ErrorCode.InvalidSessionTimeout, -1, "", "", join.MemberId, []);
        }
        else if (await broker.HttpMembersAsync(join.Group) > 0)
        {
            outcome = new JoinOutcome(ErrorCode.InconsistentGroupProtocol, -1, "", "", join.MemberId, []);
        }
        else
        {
            outcome = await broker.Groups.JoinAsync(join);
        }
        if (version >= 2)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteInt16(outcome.Error);
        writer.WriteInt32(outcome.Generation);
        writer.WriteString(outcome.Protocol);
        writer.WriteString(outcome.Leader);
        writer.WriteString(outcome.MemberId);
        writer.WriteArrayLength(outcome.Members.Count);
        foreach (var (memberId, instanceId, metadata) in outcome.Members)
        {
            writer.WriteString(memberId);
            if (version >= 5)
            {
                writer.WriteNullableString(instanceId);
            }
            writer.WriteInt32(metadata.Length);
            writer.WriteBytes(metadata);
        }
        return true;
    }

    public static async Task<bool> SyncGroupAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        var reader = new KafkaReader(request.Body.Span);
        string group = reader.ReadString();
        int generation = reader.ReadInt32();
        string memberId = reader.ReadString();
        if (request.Version >= 3)
        {
            reader.ReadNullableString(); // group_instance_id
        }
        int count = reader.ReadArrayLength(minElementBytes: 6);
        var assignments = new List<(string, byte[])>(Math.Max(0, count));
        for (int i = 0; i < count; i++)
        {
            string id = reader.ReadString();
            byte[] assignment = reader.ReadNullableBytes(out _).ToArray();
            assignments.Add((id, assignment));
        }
        var outcome = broker.Allows(request, KafkaResource.Group, group, KafkaOperation.Consume)
            ? await broker.Groups.SyncAsync(group, generation, memberId, assignments)
            : new SyncOutcome(ErrorCode.GroupAuthorizationFailed, []);
        if (request.Version >= 1)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteInt16(outcome.Error);
        writer.WriteInt32(outcome.Assignment.Length);
        writer.WriteBytes(outcome.Assignment);
        return true;
    }

    public static bool Heartbeat(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        var reader = new KafkaReader(request.Body.Span);
        string group = reader.ReadString();
        int generation = reader.ReadInt32();
        string memberId = reader.ReadString();
        short error = broker.Allows(request, KafkaResource.Group, group, KafkaOperation.Consume)
            ? broker.Groups.Heartbeat(group, generation, memberId)
            : ErrorCode.GroupAuthorizationFailed;
        if (request.Version >= 1)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteInt16(error);
        return true;
    }

    public static bool LeaveGroup(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        string group = reader.ReadString();
        var members = new List<(string MemberId, string? InstanceId)>();
        if (version <= 2)
        {
            members.Add((reader.ReadString(), null));
        }
        else
        {
            int count = reader.ReadArrayLength(minElementBytes: 4);
            for (int i = 0; i < count; i++)
            {
                members.Add((reader.ReadString(), reader.ReadNullableString()));
            }
        }
        bool allowed = broker.Allows(request, KafkaResource.Group, group, KafkaOperation.Consume);
        var results = members.Select(m => (m.MemberId, m.InstanceId, Error: allowed ? broker.Groups.Leave(group, m.MemberId) : ErrorCode.GroupAuthorizationFailed)).ToList();
        if (version >= 1)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteInt16(version <= 2 ? results[0].Error : ErrorCode.None);
        if (version >= 3)
        {
            writer.WriteArrayLength(results.Count);
            foreach (var (memberId, instanceId, error) in results)
            {
                writer.WriteString(memberId);
                writer.WriteNullableString(instanceId);
                writer.WriteInt16(error);
            }
        }
        return true;
    }

    public static async Task<bool> ListGroupsAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        var groups = broker.Groups.List().ToDictionary(g => g.Group, g => g.ProtocolType, StringComparer.Ordinal);
        foreach (string name in await broker.StoredGroupsAsync())
        {
            groups.TryAdd(name, "consumer");
        }
        foreach (string hidden in groups.Keys.Where(g => !broker.Allows(request, KafkaResource.Group, g, KafkaOperation.Describe)).ToList())
        {
            groups.Remove(hidden);
        }
        if (request.Version >= 1)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteInt16(ErrorCode.None);
        writer.WriteArrayLength(groups.Count);
        foreach (var (name, protocolType) in groups.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            writer.WriteString(name);
            writer.WriteString(protocolType);
        }
        return true;
    }

    /// <summary>
    /// DeleteGroups (kafka-consumer-groups --delete, AdminClient.DeleteGroups): removes a group without members and its
    /// committed offsets — the same store HTTP groups use, so a group HTTP members hold is NON_EMPTY_GROUP too.
    /// </summary>
    public static async Task<bool> DeleteGroupsAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        var names = ReadGroupNames(request);
        var results = new List<(string Group, short Error)>(names.Count);
        foreach (string name in names)
        {
            results.Add((name, await DeleteGroupAsync(request, broker, name)));
        }
        writer.WriteInt32(0); // throttle_time_ms
        writer.WriteArrayLength(results.Count);
        foreach (var (group, error) in results)
        {
            writer.WriteString(group);
            writer.WriteInt16(error);
        }
        return true;
    }

    private static List<string> ReadGroupNames(KafkaRequest request)
    {
        var reader = new KafkaReader(request.Body.Span);
        int count = reader.ReadArrayLength(minElementBytes: 2);
        var names = new List<string>(Math.Max(0, count));
        for (int i = 0; i < count; i++)
        {
            names.Add(reader.ReadString());
        }
        return names;
    }

    private static async Task<short> DeleteGroupAsync(KafkaRequest request, KafkaBroker broker, string name)
    {
        if (!broker.Allows(request, KafkaResource.Group, name, KafkaOperation.Admin))
        {
            return ErrorCode.GroupAuthorizationFailed;
        }
        if (broker.Groups.HasMembers(name))
        {
            return ErrorCode.NonEmptyGroup;
        }
        try
        {
            await broker.GroupStore.DeleteAsync(name);
            return ErrorCode.None;
        }
        catch (Gateway.Storage.GroupNotEmptyException)
        {
            return ErrorCode.NonEmptyGroup;
        }
        catch (Gateway.Storage.GroupNotFoundException)
        {
            return ErrorCode.GroupIdNotFound;
        }
    }

    public static bool DescribeGroups(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        int count = reader.ReadArrayLength(minElementBytes: 2);
        var names = new List<string>(Math.Max(0, count));
        for (int i = 0; i < count; i++)
        {
            names.Add(reader.ReadString());
        }
        if (version >= 1)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteArrayLength(names.Count);
        foreach (string name in names)
        {
            bool allowed = broker.Allows(request, KafkaResource.Group, name, KafkaOperation.Describe);
            var group = allowed ? broker.Groups.Describe(name) : null;
            writer.WriteInt16(allowed ? ErrorCode.None : ErrorCode.GroupAuthorizationFailed);
            writer.WriteString(name);
            writer.WriteString(group?.State ?? "Dead");
            writer.WriteString(group?.ProtocolType ?? "");
            writer.WriteString(group?.Protocol ?? "");
            var members = group?.Members ?? [];
            writer.WriteArrayLength(members.Count);
            foreach (var (memberId, instanceId, clientId, clientHost, metadata, assignment) in members)
            {
                writer.WriteString(memberId);
                if (version >= 4)
                {
                    writer.WriteNullableString(instanceId);
                }
                writer.WriteString(clientId);
                writer.WriteString(clientHost);
                writer.WriteInt32(metadata.Length);
                writer.WriteBytes(metadata);
                writer.WriteInt32(assignment.Length);
                writer.WriteBytes(assignment);
            }
            if (version >= 3)
            {
                writer.WriteInt32(int.MinValue); // authorized_operations: not computed
            }
        }
        return true;
    }

    private static JoinRequest ParseJoin(KafkaRequest request, KafkaClientInfo client)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        string group = reader.ReadString();
        int sessionTimeout = reader.ReadInt32();
        int rebalanceTimeout = version >= 1 ? reader.ReadInt32() : -1;
        string memberId = reader.ReadString();
        string? instanceId = version >= 5 ? reader.ReadNullableString() : null;
        string protocolType = reader.ReadString();
        int count = reader.ReadArrayLength(minElementBytes: 6);
        var protocols = new List<(string, byte[])>(Math.Max(0, count));
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            protocols.Add((name, reader.ReadNullableBytes(out _).ToArray()));
        }
        if (protocols.Count == 0)
        {
            throw new MalformedRequestException("A JoinGroup request names no protocol.");
        }
        return new JoinRequest(group, sessionTimeout, rebalanceTimeout, memberId, instanceId, protocolType, protocols,
            request.ClientId ?? "", client.RemoteHost, RequireKnownMemberId: version >= 4);
    }
}
