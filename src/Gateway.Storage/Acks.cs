using System.Text.Json.Serialization;

namespace Gateway.Storage;

/// <summary>When an append is acknowledged.</summary>
[JsonConverter(typeof(AcksJsonConverter))]
public enum Acks
{
    /// <summary>After a commit covering the records reached the device.</summary>
    [JsonStringEnumMemberName("disk")]
    Disk,

    /// <summary>After the append to memory; a background flush persists it within the flush interval.</summary>
    [JsonStringEnumMemberName("memory")]
    Memory,
}

/// <summary>
/// <see cref="Acks"/> as JSON: its names alone. Numbers, numbers in strings (<c>"1"</c>) and anything else are
/// refused, so that no value can weaken durability by falling through to <see cref="Acks.Memory"/>.
/// </summary>
public sealed class AcksJsonConverter() : JsonStringEnumConverter<Acks>(namingPolicy: null, allowIntegerValues: false);
