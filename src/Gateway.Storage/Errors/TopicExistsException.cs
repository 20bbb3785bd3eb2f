namespace Gateway.Storage;

/// <summary>A topic with that name already exists.</summary>
public sealed class TopicExistsException(string topic) : Exception($"Topic '{topic}' already exists.")
{
    public string Topic { get; } = topic;
}
