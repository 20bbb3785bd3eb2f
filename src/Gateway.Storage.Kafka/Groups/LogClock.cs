namespace Gateway.Storage.Kafka.Groups;

/// <summary>The replicas' clock: the time of the command being applied, never going back.</summary>
internal sealed class LogClock : TimeProvider
{
    private long _ticks = DateTimeOffset.UnixEpoch.UtcTicks;

    public void AdvanceTo(DateTimeOffset time)
    {
        if (time.UtcTicks > Volatile.Read(ref _ticks))
        {
            Volatile.Write(ref _ticks, time.UtcTicks);
        }
    }

    public override DateTimeOffset GetUtcNow() => new(Volatile.Read(ref _ticks), TimeSpan.Zero);
}
