namespace Gateway.KafkaProtocol.Protocol;

/// <summary>Kafka's API keys: the first field of every request.</summary>
public enum ApiKey : short
{
    Produce = 0,
    Fetch = 1,
    ListOffsets = 2,
    Metadata = 3,
    OffsetCommit = 8,
    OffsetFetch = 9,
    FindCoordinator = 10,
    JoinGroup = 11,
    Heartbeat = 12,
    LeaveGroup = 13,
    SyncGroup = 14,
    DescribeGroups = 15,
    ListGroups = 16,
    SaslHandshake = 17,
    ApiVersions = 18,
    CreateTopics = 19,
    DeleteTopics = 20,
    DeleteRecords = 21,
    InitProducerId = 22,
    DescribeConfigs = 32,
    AlterConfigs = 33,
    SaslAuthenticate = 36,
    CreatePartitions = 37,
    DeleteGroups = 42,
    IncrementalAlterConfigs = 44,
}

/// <summary>
/// The versions this broker serves. Only non-flexible versions (plus ApiVersions v3, whose response header is
/// always v0): clients take the highest version both sides offer, and every produce and consume flow works with
/// them. Every range starts at 0, because librdkafka 2.0.2 (kcat, Debian's Python client) turns features on only
/// when the range holds one exact old version (e.g. Produce 3 and Fetch 4 for the v2 record format).
/// </summary>
public static class SupportedApis
{
    public static readonly IReadOnlyList<(ApiKey Key, short Min, short Max)> All =
    [
        (ApiKey.Produce, 0, 8),
        (ApiKey.Fetch, 0, 11),
        (ApiKey.ListOffsets, 0, 5),
        (ApiKey.Metadata, 0, 8),
        (ApiKey.OffsetCommit, 0, 7),
        (ApiKey.OffsetFetch, 0, 5),
        (ApiKey.FindCoordinator, 0, 2),
        (ApiKey.JoinGroup, 0, 5),
        (ApiKey.Heartbeat, 0, 3),
        (ApiKey.LeaveGroup, 0, 3),
        (ApiKey.SyncGroup, 0, 3),
        (ApiKey.DescribeGroups, 0, 4),
        (ApiKey.DeleteGroups, 0, 1),
        (ApiKey.ListGroups, 0, 2),
        (ApiKey.ApiVersions, 0, 3),
        (ApiKey.CreateTopics, 0, 4),
        (ApiKey.DeleteTopics, 0, 3),
        (ApiKey.DeleteRecords, 0, 1),
        (ApiKey.InitProducerId, 0, 1),
        (ApiKey.SaslHandshake, 0, 1),
        (ApiKey.SaslAuthenticate, 0, 1),
        (ApiKey.DescribeConfigs, 0, 3),
        (ApiKey.AlterConfigs, 0, 1),
        (ApiKey.IncrementalAlterConfigs, 0, 0),
        (ApiKey.CreatePartitions, 0, 1),
    ];

    public static bool Supports(short key, short version)
    {
        foreach (var (k, min, max) in All)
        {
            if ((short)k == key)
            {
                return version >= min && version <= max;
            }
        }
        return false;
    }

    /// <summary>Whether a request of this key and version uses request header v2 and flexible encoding.</summary>
    public static bool IsFlexible(short key, short version) => key == (short)ApiKey.ApiVersions && version >= 3;
}
