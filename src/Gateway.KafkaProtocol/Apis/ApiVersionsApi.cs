using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// ApiVersions (key 18): the versions of every API this broker serves. A version newer than it knows gets the v0
/// answer with UNSUPPORTED_VERSION and the ranges, as Kafka does, so the client retries with one it offers.
/// </summary>
internal static class ApiVersionsApi
{
    private const short MaxVersion = 3;

    public static bool Handle(KafkaRequest request, KafkaWriter writer)
    {
        short version = request.Version;
        bool unsupported = version > MaxVersion || version < 0;
        if (unsupported)
        {
            version = 0;
        }
        bool flexible = version >= 3;
        writer.WriteInt16(unsupported ? ErrorCode.UnsupportedVersion : ErrorCode.None);
        if (flexible)
        {
            writer.WriteCompactArrayLength(SupportedApis.All.Count);
        }
        else
        {
            writer.WriteArrayLength(SupportedApis.All.Count);
        }
        foreach (var (key, min, max) in SupportedApis.All)
        {
            writer.WriteInt16((short)key);
            writer.WriteInt16(min);
            writer.WriteInt16(max);
            if (flexible)
            {
                writer.WriteEmptyTaggedFields();
            }
        }
        if (version >= 1)
        {
            writer.WriteInt32(0); // throttle_time_ms
        }
        if (flexible)
        {
            writer.WriteEmptyTaggedFields();
        }
        return true;
    }
}
