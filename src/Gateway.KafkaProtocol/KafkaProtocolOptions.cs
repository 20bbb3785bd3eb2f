namespace Gateway.KafkaProtocol;

/// <summary>The Kafka listener's settings (section <c>KafkaProtocol</c>).</summary>
public sealed class KafkaProtocolOptions
{
    /// <summary>host:port to listen on; empty turns the listener off. Default <c>localhost:9092</c>.</summary>
    public string Listen { get; set; } = "localhost:9092";

    /// <summary>host:port that metadata tells clients to connect to; default: the listen host and the port a client came in on.</summary>
    public string? Advertise { get; set; }

    /// <summary>The largest request frame; a larger one closes the connection (Kafka's <c>socket.request.max.bytes</c>).</summary>
    public int MaxRequestBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Requests of one connection handled at once; answers still go out in request order.</summary>
    public int MaxInFlightRequests { get; set; } = 16;

    /// <summary>Partitions a topic may have (set from <c>Limits:MaxPartitions</c>, as over HTTP).</summary>
    public int MaxPartitions { get; set; } = 1024;

    /// <summary>Bounds of a Kafka group member's session timeout (Kafka's <c>group.min/max.session.timeout.ms</c>).</summary>
    public int MinSessionTimeoutMs { get; set; } = 6_000;

    public int MaxSessionTimeoutMs { get; set; } = 1_800_000;

    /// <summary>The cluster id metadata reports.</summary>
    public string ClusterId { get; set; } = "gateway";
}
