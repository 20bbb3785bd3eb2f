namespace Gateway.Storage;

/// <summary>The named topic does not exist (or is being deleted).</summary>
public sealed class TopicNotFoundException(string topic) : Exception($"Topic '{topic}' does not exist.")
{
    public string Topic { get; } = topic;
}
