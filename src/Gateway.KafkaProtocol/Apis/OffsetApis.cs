using Gateway.KafkaProtocol.Protocol;
using Gateway.Storage;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// OffsetCommit (0-7) and OffsetFetch (0-5). Committed offsets live in the store the HTTP groups use, so
/// <c>GET /v1/groups</c>, lag metrics and <c>PUT /v1/groups/{g}/offsets</c> see Kafka groups too. A commit is fenced
/// by the Kafka group's membership (a group without members takes commits from anyone, as Kafka's does); a commit
/// to a group that HTTP members hold is refused. Durable when answered. Commit metadata strings are not kept (null
/// on fetch).
/// </summary>
internal static class OffsetApis
{
    public static async Task<bool> CommitAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        string group = reader.ReadString();
        int generation = version >= 1 ? reader.ReadInt32() : -1;
        string memberId = version >= 1 ? reader.ReadString() : "";
        if (version >= 7)
        {
            reader.ReadNullableString(); // group_instance_id
        }
        if (version is >= 2 and <= 4)
        {
            reader.ReadInt64(); // retention_time_ms: committed offsets stay until the group or topic is deleted
        }
        var topics = new List<(string Name, List<(int Index, long Offset)> Partitions)>();
        int topicCount = reader.ReadArrayLength(minElementBytes: 6);
        for (int t = 0; t < topicCount; t++)
        {
            string name = reader.ReadString();
            int partitionCount = reader.ReadArrayLength(minElementBytes: 14);
            var partitions = new List<(int, long)>(partitionCount);
            for (int p = 0; p < partitionCount; p++)
            {
                int index = reader.ReadInt32();
                long offset = reader.ReadInt64();
                if (version >= 6)
                {
                    reader.ReadInt32(); // committed_leader_epoch
                }
                if (version == 1)
                {
                    reader.ReadInt64(); // commit_timestamp
                }
                reader.ReadNullableString(); // metadata
                partitions.Add((index, offset));
            }
            topics.Add((name, partitions));
        }

        short groupError = group.Length == 0 ? ErrorCode.InvalidGroupId
            : !broker.Allows(request, KafkaResource.Group, group, KafkaOperation.Consume) ? ErrorCode.GroupAuthorizationFailed
            : broker.Groups.CheckCommit(group, generation, memberId);
        if (groupError == ErrorCode.None && await broker.HttpMembersAsync(group) > 0)
        {
            groupError = ErrorCode.InconsistentGroupProtocol;
        }
        var errors = new Dictionary<(string, int), short>();
        var offsets = new Dictionary<TopicPartition, long>();
        foreach (var (name, partitions) in topics)
        {
            foreach (var (index, offset) in partitions)
            {
                short error = groupError;
                if (error == ErrorCode.None)
                {
                    // As in Kafka, committing needs the right to read the topic too.
                    error = !broker.Allows(request, KafkaResource.Topic, name, KafkaOperation.Fetch) ? ErrorCode.TopicAuthorizationFailed
                        : !broker.Store.TryGetTopic(name, out var topic) || index < 0 || index >= topic.PartitionCount ? ErrorCode.UnknownTopicOrPartition
                        : offset < 0 ? ErrorCode.OffsetOutOfRange
                        : ErrorCode.None;
                }
                errors[(name, index)] = error;
                if (error == ErrorCode.None)
                {
                    offsets[new TopicPartition(name, index)] = offset;
                }
            }
        }
        if (offsets.Count > 0)
        {
            try
            {
                await broker.GroupStore.ResetOffsetsAsync(group, offsets);
            }
            catch (Exception ex)
            {
                short failure = broker.ErrorOf(ex, group, -1);
                foreach (var tp in offsets.Keys)
                {
                    errors[(tp.Topic, tp.Partition)] = failure;
                }
            }
        }

        if (version >= 3)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteArrayLength(topics.Count);
        foreach (var (name, partitions) in topics)
        {
            writer.WriteString(name);
            writer.WriteArrayLength(partitions.Count);
            foreach (var (index, _) in partitions)
            {
                writer.WriteInt32(index);
                writer.WriteInt16(errors[(name, index)]);
            }
        }
        return true;
    }

    public static async Task<bool> FetchAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        string group = reader.ReadString();
        List<(string Name, List<int> Partitions)>? asked = null;
        int topicCount = reader.ReadArrayLength(minElementBytes: 6, nullable: version >= 2);
        if (topicCount >= 0)
        {
            asked = new List<(string, List<int>)>(topicCount);
            for (int t = 0; t < topicCount; t++)
            {
                string name = reader.ReadString();
                int count = reader.ReadArrayLength(minElementBytes: 4);
                var partitions = new List<int>(Math.Max(0, count));
                for (int p = 0; p < count; p++)
                {
                    partitions.Add(reader.ReadInt32());
                }
                asked.Add((name, partitions));
            }
        }
        IReadOnlyDictionary<TopicPartition, long> committed = new Dictionary<TopicPartition, long>();
        bool groupAllowed = broker.Allows(request, KafkaResource.Group, group, KafkaOperation.Describe);
        if (groupAllowed)
        {
            try
            {
                committed = (await broker.GroupStore.DescribeAsync(group)).CommittedOffsets;
            }
            catch (GroupNotFoundException)
            {
                // no offsets
            }
        }
        // Null topics (v2+): every partition with a committed offset, of the topics the principal may see.
        asked ??= [.. committed.Keys.Where(tp => broker.Allows(request, KafkaResource.Topic, tp.Topic, KafkaOperation.Describe))
            .GroupBy(tp => tp.Topic).Select(g => (g.Key, g.Select(tp => tp.Partition).Order().ToList()))];

        if (version >= 3)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteArrayLength(asked.Count);
        foreach (var (name, partitions) in asked)
        {
            writer.WriteString(name);
            writer.WriteArrayLength(partitions.Count);
            short partitionError = !groupAllowed ? ErrorCode.GroupAuthorizationFailed
                : !broker.Allows(request, KafkaResource.Topic, name, KafkaOperation.Describe) ? ErrorCode.TopicAuthorizationFailed
                : ErrorCode.None;
            foreach (int index in partitions)
            {
                writer.WriteInt32(index);
                long offset = -1;
                if (partitionError == ErrorCode.None && committed.TryGetValue(new TopicPartition(name, index), out long found))
                {
                    offset = found;
                }
                writer.WriteInt64(offset);
                if (version >= 5)
                {
                    writer.WriteInt32(-1); // committed_leader_epoch
                }
                writer.WriteNullableString(null); // metadata
                writer.WriteInt16(partitionError);
            }
        }
        if (version >= 2)
        {
            writer.WriteInt16(groupAllowed ? ErrorCode.None : ErrorCode.GroupAuthorizationFailed);
        }
        return true;
    }
}
