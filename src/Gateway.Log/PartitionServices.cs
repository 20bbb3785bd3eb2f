using Gateway.Log.Device;
using Microsoft.Extensions.Logging;

namespace Gateway.Log;

/// <summary>
/// What every partition of a store shares: the commit scheduler, the disk-space reserve, the clock, the logger, the
/// write journal (<see cref="LogStoreOptions.WriteJournal"/>; null without it), and
/// the gate that lets one partition at a time verify its log in the background after a restart.
/// </summary>
internal sealed record PartitionServices(CommitScheduler Scheduler, DiskSpaceGuard DiskSpace, TimeProvider Time, ILogger Logger, WriteJournal? Journal)
{
    public SemaphoreSlim Verification { get; } = new(1, 1);
}
