namespace Gateway.Storage;

/// <summary>A request carried a generation the group has moved past: the member must heartbeat to learn the new one.</summary>
public sealed class StaleGenerationException(long given, long current)
    : Exception($"Generation {given} is stale; the group is at generation {current}. Heartbeat to get the current assignment.")
{
    public long Given { get; } = given;

    public long Current { get; } = current;
}
