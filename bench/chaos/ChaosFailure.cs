namespace Gateway.Chaos;

/// <summary>The run cannot go on (the server does not come back, answers nonsense): reported, exit code 1.</summary>
internal sealed class ChaosFailure(string message) : Exception(message);
