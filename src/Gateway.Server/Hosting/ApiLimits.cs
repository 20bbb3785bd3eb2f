using System.ComponentModel.DataAnnotations;

namespace Gateway.Server.Hosting;

/// <summary>Request limits, bound from the <c>Limits</c> configuration section. Going past one is a clear 4xx.</summary>
public sealed class ApiLimits
{
    /// <summary>Largest request body accepted (413 <c>request_too_large</c>).</summary>
    [Range(1024, long.MaxValue)]
    public long MaxRequestBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>Records returned by a fetch without <c>limit</c>.</summary>
    [Range(1, int.MaxValue)]
    public int DefaultFetchRecords { get; set; } = 500;

    /// <summary>Largest <c>limit</c> a fetch may ask for.</summary>
    [Range(1, int.MaxValue)]
    public int MaxFetchRecords { get; set; } = 10_000;

    /// <summary>Bytes of records returned by a fetch without <c>maxBytes</c>.</summary>
    [Range(1, int.MaxValue)]
    public int DefaultFetchBytes { get; set; } = 1024 * 1024;

    /// <summary>Largest <c>maxBytes</c> a fetch may ask for.</summary>
    [Range(1, int.MaxValue)]
    public int MaxFetchBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Longest long-poll (<c>waitMs</c>).</summary>
    [Range(0, int.MaxValue)]
    public int MaxWaitMs { get; set; } = 60_000;

    /// <summary>Most partitions a topic may have.</summary>
    [Range(1, 100_000)]
    public int MaxPartitions { get; set; } = 1024;

    /// <summary>Kestrel: most bytes of request line and headers (431 beyond).</summary>
    [Range(1024, int.MaxValue)]
    public int MaxRequestHeadersBytes { get; set; } = 32 * 1024;

    /// <summary>Kestrel: most request headers (431 beyond).</summary>
    [Range(1, int.MaxValue)]
    public int MaxRequestHeaderCount { get; set; } = 100;

    /// <summary>Kestrel: most open connections (further ones are refused); 0 for no limit. SSE subscribers count.</summary>
    [Range(0, long.MaxValue)]
    public long MaxConnections { get; set; } = 20_000;

    /// <summary>Kestrel: a request body arriving slower than this (bytes/s, after a 5 s grace) is cut off; slow uploads cannot hold a connection.</summary>
    [Range(1, double.MaxValue)]
    public double MinRequestBodyBytesPerSecond { get; set; } = 240;

    /// <summary>Kestrel: time to receive the request headers.</summary>
    [Range(1, 3600)]
    public int RequestHeadersTimeoutSeconds { get; set; } = 30;
}
