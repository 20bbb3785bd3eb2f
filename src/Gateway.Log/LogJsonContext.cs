using System.Text.Json.Serialization;

namespace Gateway.Log;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(PartitionState))]
[JsonSerializable(typeof(TopicMetadata))]
internal sealed partial class LogJsonContext : JsonSerializerContext;
