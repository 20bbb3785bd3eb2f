using System.Text;
using Gateway.KafkaProtocol.Protocol;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// SaslHandshake (key 17, versions 0-1) and SaslAuthenticate (key 36, versions 0-1): SASL PLAIN, whose password is an
/// API key or a JWT (the user name is not used: the credential names the principal), and OAUTHBEARER with a JWT
/// (RFC 7628's client message, <c>n,,\x01auth=Bearer &lt;token&gt;\x01\x01</c>). A refused credential is answered
/// SASL_AUTHENTICATION_FAILED with the reason, then the connection closes, as Kafka does. Tokens travel only inside
/// SaslAuthenticate: the unframed tokens that follow a v0 handshake (clients before Kafka 1.0) are not served.
/// </summary>
internal static class SaslApis
{
    public const string Plain = "PLAIN";
    public const string OAuthBearer = "OAUTHBEARER";

    private static readonly string[] Mechanisms = [Plain, OAuthBearer];

    public static bool Handshake(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, KafkaClientInfo client)
    {
        string mechanism = new KafkaReader(request.Body.Span).ReadString();
        bool offered = broker.Security.SaslOffered;
        short error = !offered || !Mechanisms.Contains(mechanism, StringComparer.Ordinal) ? ErrorCode.UnsupportedSaslMechanism
            : client.Principal is not null || client.SaslMechanism is not null ? ErrorCode.IllegalSaslState
            : ErrorCode.None;
        if (error == ErrorCode.None)
        {
            client.SaslMechanism = mechanism;
        }
        writer.WriteInt16(error);
        string[] mechanisms = offered ? Mechanisms : [];
        writer.WriteArrayLength(mechanisms.Length);
        foreach (string name in mechanisms)
        {
            writer.WriteString(name);
        }
        return true;
    }

    public static async Task<bool> AuthenticateAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, KafkaClientInfo client)
    {
        byte[] token = new KafkaReader(request.Body.Span).ReadNullableBytes(out _).ToArray();
        short error;
        string? message = null;
        if (client.SaslMechanism is not { } mechanism || client.Principal is not null)
        {
            (error, message) = (ErrorCode.IllegalSaslState, "SaslHandshake first, once per connection.");
        }
        else if (CredentialOf(mechanism, token) is not { } credential)
        {
            (error, message) = (ErrorCode.SaslAuthenticationFailed, $"The {mechanism} message does not parse.");
        }
        else
        {
            var outcome = await broker.Security.AuthenticateAsync(credential);
            (error, message) = outcome.Principal is null ? (ErrorCode.SaslAuthenticationFailed, outcome.Failure) : (ErrorCode.None, null);
            client.Principal = outcome.Principal;
        }
        request.CloseAfterAnswer = error != ErrorCode.None;
        writer.WriteInt16(error);
        writer.WriteNullableString(message);
        writer.WriteInt32(0); // auth_bytes: nothing to send back
        if (request.Version >= 1)
        {
            writer.WriteInt64(0); // session_lifetime_ms: no re-authentication asked for
        }
        return true;
    }

    /// <summary>The API key or JWT in a client's first (and only) SASL message, or null when it does not parse.</summary>
    internal static string? CredentialOf(string mechanism, ReadOnlySpan<byte> token)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(token);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
        if (mechanism == Plain)
        {
            // [authzid] NUL authcid NUL passwd
            string[] parts = text.Split('\0');
            return parts.Length == 3 && parts[2].Length > 0 ? parts[2] : null;
        }
        // gs2-header (n,[a=authzid],) then ^A-separated key=value pairs, ending ^A^A; auth=Bearer <token>.
        int start = text.IndexOf('\u0001', StringComparison.Ordinal);
        if (!text.StartsWith("n,", StringComparison.Ordinal) || start < 0 || !text.EndsWith("\u0001\u0001", StringComparison.Ordinal))
        {
            return null;
        }
        foreach (string pair in text[(start + 1)..].Split('\u0001', StringSplitOptions.RemoveEmptyEntries))
        {
            if (pair.StartsWith("auth=Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                string bearer = pair["auth=Bearer ".Length..].Trim();
                return bearer.Length > 0 ? bearer : null;
            }
        }
        return null;
    }
}
