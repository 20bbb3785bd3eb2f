using Gateway.Storage;

namespace Gateway.Log;

/// <summary>The content of a topic's <c>topic.json</c>.</summary>
internal sealed record TopicMetadata(string Name, int Partitions, TopicConfig Config, long CreatedAt);
