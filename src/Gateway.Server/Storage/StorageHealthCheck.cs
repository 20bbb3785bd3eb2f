using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gateway.Server.Storage;

/// <summary>Ready when the store is open and every partition recovered; a damaged partition makes the server not ready.</summary>
internal sealed class StorageHealthCheck(IStorageHost storage) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!storage.IsOpen)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("The log store is not open."));
        }
        var failures = storage.Store.Failures;
        if (failures.Count > 0)
        {
            string detail = string.Join("; ", failures.Select(f => f.Partition < 0 ? $"{f.Topic}: {f.Reason}" : $"{f.Topic}/{f.Partition}: {f.Reason}"));
            return Task.FromResult(HealthCheckResult.Unhealthy($"{failures.Count} partition(s) cannot serve: {detail}"));
        }
        return Task.FromResult(HealthCheckResult.Healthy());
    }
}
