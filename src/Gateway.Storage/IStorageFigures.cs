namespace Gateway.Storage;

/// <summary>
/// What a storage engine reports about itself on <c>/metrics</c> besides what the port's topics and groups say
/// (optional: a backend without such figures does not implement it). Each figure is a gauge without labels.
/// </summary>
public interface IStorageFigures
{
    /// <summary>The figures now; the same names, in the same order, on every call.</summary>
    IReadOnlyList<StorageFigure> Figures { get; }
}

/// <summary>One gauge: its Prometheus name, its help text and its value now.</summary>
public sealed record StorageFigure(string Name, string Help, double Value);
