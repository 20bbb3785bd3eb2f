using System.Net;
using Gateway.KafkaProtocol.Protocol;
using Gateway.Storage;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// Metadata (key 3), versions 0-8: one broker (node 0, the controller and the leader of every partition, with leader
/// epoch -1 so that clients skip epoch validation), and the topics asked for (all of them for none or null). A
/// topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION: topics are created explicitly (over HTTP or CreateTopics),
/// never by asking for them.
/// </summary>
internal static class MetadataApi
{
    public static bool Handle(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, KafkaClientInfo client)
    {
        short version = request.Version;
        var reader = new KafkaReader(request.Body.Span);
        List<string>? names = null;
        int count = reader.ReadArrayLength(minElementBytes: 2, nullable: version >= 1);
        if (count >= 0 && !(version == 0 && count == 0))
        {
            names = new List<string>(count);
            for (int i = 0; i < count; i++)
            {
                names.Add(reader.ReadString());
            }
        }
        // allow_auto_topic_creation (v4+) and the authorized-operations flags (v8) change nothing here.

        var (host, port) = Advertised(broker.Options, client);
        if (version >= 3)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        writer.WriteArrayLength(1);
        writer.WriteInt32(KafkaBroker.NodeId);
        writer.WriteString(host);
        writer.WriteInt32(port);
        if (version >= 1)
        {
            writer.WriteNullableString(null); // rack
        }
        if (version >= 2)
        {
            writer.WriteNullableString(broker.Options.ClusterId);
        }
        if (version >= 1)
        {
            writer.WriteInt32(KafkaBroker.NodeId); // controller_id: a real broker (kafkajs sends admin requests to it)
        }
        // Every topic lists only those the principal may see; one asked for by name that it may not see is
        // TOPIC_AUTHORIZATION_FAILED, whether or not it exists (as Kafka answers).
        var topics = names is null
            ? [.. broker.Store.Topics.Where(t => broker.Allows(request, KafkaResource.Topic, t.Name, KafkaOperation.Describe))
                .OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => (t.Name, (ITopic?)t, ErrorCode.None))]
            : names.Select(n => !broker.Allows(request, KafkaResource.Topic, n, KafkaOperation.Describe) ? (n, null, ErrorCode.TopicAuthorizationFailed)
                : broker.Store.TryGetTopic(n, out var t) ? (n, t, ErrorCode.None) : (n, (ITopic?)null, ErrorCode.UnknownTopicOrPartition)).ToList();
        writer.WriteArrayLength(topics.Count);
        foreach (var (name, topic, error) in topics)
        {
            writer.WriteInt16(error);
            writer.WriteString(name);
            if (version >= 1)
            {
                writer.WriteBool(false); // is_internal
            }
            int partitions = topic?.PartitionCount ?? 0;
            writer.WriteArrayLength(partitions);
            for (int p = 0; p < partitions; p++)
            {
                writer.WriteInt16(ErrorCode.None);
                writer.WriteInt32(p);
                writer.WriteInt32(KafkaBroker.NodeId); // leader
                if (version >= 7)
                {
                    writer.WriteInt32(-1); // leader_epoch
                }
                writer.WriteArrayLength(1); // replicas
                writer.WriteInt32(KafkaBroker.NodeId);
                writer.WriteArrayLength(1); // in-sync replicas
                writer.WriteInt32(KafkaBroker.NodeId);
                if (version >= 5)
                {
                    writer.WriteArrayLength(0); // offline replicas
                }
            }
            if (version >= 8)
            {
                writer.WriteInt32(int.MinValue); // topic_authorized_operations: not computed
            }
        }
        if (version >= 8)
        {
            writer.WriteInt32(int.MinValue); // cluster_authorized_operations: not computed
        }
        return true;
    }

    /// <summary>KafkaProtocol:Advertise, else the listen host with the port this client came in on (a listener on port 0 in tests).</summary>
    internal static (string Host, int Port) Advertised(KafkaProtocolOptions options, KafkaClientInfo client)
    {
        if (KafkaListener.TryParseHostPort(options.Advertise, out string host, out int port))
        {
            return (host, port);
        }
        if (!KafkaListener.TryParseHostPort(options.Listen, out host, out port))
        {
            host = "localhost";
        }
        if (client.LocalEndPoint is IPEndPoint local)
        {
            port = local.Port;
            if (host is "" or "0.0.0.0" or "::" or "[::]")
            {
                host = local.Address.ToString();
            }
        }
        return (host, port);
    }
}
