using Gateway.Log;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Storage;

/// <summary>Applies every topic's retention every <c>Storage:RetentionCheckIntervalMs</c>.</summary>
internal sealed partial class RetentionService(EmbeddedStorage storage, IOptions<LogStoreOptions> options, TimeProvider time, ILogger<RetentionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.RetentionCheckIntervalMs), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (!storage.IsOpen)
                {
                    continue;
                }
                try
                {
                    await storage.ApplyRetentionAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogRetentionFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Error, Message = "Applying retention failed; it is tried again at the next interval")]
    private static partial void LogRetentionFailed(ILogger logger, Exception exception);
}
