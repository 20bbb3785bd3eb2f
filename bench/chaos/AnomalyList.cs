namespace Gateway.Chaos;

/// <summary>How many times one kind of anomaly happened, with the first few described.</summary>
internal sealed class AnomalyList
{
    private const int Kept = 5;
    private readonly List<string> _examples = [];

    public long Count { get; private set; }

    public IReadOnlyList<string> Examples => _examples;

    public void Add(string description)
    {
        Count++;
        if (_examples.Count < Kept)
        {
            _examples.Add(description);
        }
    }

    public void AddRange(IEnumerable<string> descriptions)
    {
        foreach (string description in descriptions)
        {
            Add(description);
        }
    }

    public void AddRange(AnomalyList other)
    {
        foreach (string description in other.Examples)
        {
            Add(description);
        }
        Count += other.Count - other.Examples.Count;
    }
}
