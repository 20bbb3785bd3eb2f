using Gateway.Storage;

namespace Gateway.Server.Storage;

/// <summary>
/// The backend the server runs on, as the host sees it: prepared before the server listens, opened while it starts
/// (requests other than probes wait for it), closed after it stops. The endpoints see only <see cref="Store"/> and
/// <see cref="Groups"/>, the storage port.
/// </summary>
internal interface IStorageHost
{
    bool IsOpen { get; }

    ILogStorage Store { get; }

    IGroupCoordinator Groups { get; }

    /// <summary>What must hold before the server listens (the embedded backend: its data directory's lock); null when all is well, else why the server must not start.</summary>
    string? Prepare();

    /// <summary>Starts opening the storage (once; later calls do nothing).</summary>
    void BeginOpen();

    /// <summary>Waits until the storage is open, or throws its failure (503 <c>storage_unavailable</c>).</summary>
    Task WhenOpenAsync(CancellationToken cancellationToken);
}
