using System.Text.Json.Serialization;

namespace Gateway.Log;

/// <summary>When an append is acknowledged.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Acks>))]
public enum Acks
{
    /// <summary>After a commit covering the records reached the device.</summary>
    [JsonStringEnumMemberName("disk")]
    Disk,

    /// <summary>After the append to memory; a background flush persists it within the flush interval.</summary>
    [JsonStringEnumMemberName("memory")]
    Memory,
}
