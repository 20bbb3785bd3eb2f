namespace Gateway.Storage;

/// <summary>Consumer-group settings, bound from the <c>Groups</c> configuration section.</summary>
public sealed class GroupOptions
{
    /// <summary>Lease length when a member names none.</summary>
    public int DefaultSessionTimeoutMs { get; set; } = 30_000;

    /// <summary>Shortest lease a member may ask for.</summary>
    public int MinSessionTimeoutMs { get; set; } = 1_000;

    /// <summary>Longest lease a member may ask for.</summary>
    public int MaxSessionTimeoutMs { get; set; } = 300_000;

    /// <summary>How often expired leases are swept when no request arrives.</summary>
    public int SweepIntervalMs { get; set; } = 250;
}
