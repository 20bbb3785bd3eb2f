using System.Globalization;

namespace Gateway.KafkaProtocol;

/// <summary>Addresses of the Kafka listener, as <c>KafkaProtocol:Listen</c> and <c>KafkaProtocol:Advertise</c> give them: <c>host:port</c>.</summary>
public static class KafkaListener
{
    /// <summary>Splits <c>host:port</c> (an IPv6 host in brackets); false for anything else.</summary>
    public static bool TryParseHostPort(string? text, out string host, out int port)
    {
        host = "";
        port = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535)
        {
            return false;
        }
        host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        return host.Length > 0;
    }
}
