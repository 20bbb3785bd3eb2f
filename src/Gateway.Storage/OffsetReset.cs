using System.Text.Json.Serialization;

namespace Gateway.Storage;

/// <summary>Where a member starts reading a partition that has no committed offset (Kafka's <c>auto.offset.reset</c>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<OffsetReset>))]
public enum OffsetReset
{
    /// <summary>The partition's begin offset: read everything still kept.</summary>
    [JsonStringEnumMemberName("earliest")]
    Earliest,

    /// <summary>The partition's end offset: read only what arrives from now on.</summary>
    [JsonStringEnumMemberName("latest")]
    Latest,
}
