using System.ComponentModel.DataAnnotations;

namespace Gateway.Server.Streaming;

/// <summary>Server-Sent Events settings, bound from the <c>Streaming</c> configuration section.</summary>
public sealed class StreamingOptions
{
    /// <summary>Reconnection delay sent to clients in the <c>retry:</c> field.</summary>
    [Range(0, 3_600_000)]
    public int RetryMs { get; set; } = 3_000;

    /// <summary>Interval of the keep-alive comment on an idle stream.</summary>
    [Range(1, 3_600)]
    public int KeepAliveSeconds { get; set; } = 15;

    /// <summary>How long a subscriber's socket may refuse to drain before it is disconnected.</summary>
    [Range(100, 600_000)]
    public int SendTimeoutMs { get; set; } = 30_000;

    /// <summary>How often a group stream commits the position of what it has sent.</summary>
    [Range(10, 600_000)]
    public int CommitIntervalMs { get; set; } = 1_000;

    /// <summary>Records read per partition before the stream flushes and looks at the other partitions.</summary>
    [Range(1, 100_000)]
    public int BatchRecords { get; set; } = 500;

    /// <summary>Encoded records kept per partition for subscribers at the tail to share.</summary>
    [Range(0, 1_000_000)]
    public int SharedEventsPerPartition { get; set; } = 1_024;
}
