using Microsoft.Extensions.Logging;

namespace Gateway.Log;

/// <summary>What every partition of a store shares: the commit scheduler, the disk-space reserve, the clock and the logger.</summary>
internal sealed record PartitionServices(CommitScheduler Scheduler, DiskSpaceGuard DiskSpace, TimeProvider Time, ILogger Logger);
