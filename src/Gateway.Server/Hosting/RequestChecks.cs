using Gateway.Server.Errors;
using Gateway.Storage;

namespace Gateway.Server.Hosting;

/// <summary>Checks of request parameters that several endpoints share, each failing with its 400 code.</summary>
internal static class RequestChecks
{
    public static int InRange(int value, int min, int max, string name) =>
        value >= min && value <= max ? value : throw ApiException.BadRequest("invalid_parameter", $"{name} is between {min} and {max}.");

    /// <summary>
    /// Whether a raw (percent-encoded) query string decodes to valid UTF-8. ASP.NET decodes anything else to U+FFFD, so
    /// <c>?key=%FF%FE</c> would be stored as other bytes than were sent.
    /// </summary>
    public static bool QueryIsUtf8(ReadOnlySpan<char> query)
    {
        if (!query.Contains('%'))
        {
            return true; // the server's own parser refuses non-ASCII on the request line
        }
        Span<byte> decoded = query.Length <= 1024 ? stackalloc byte[query.Length] : new byte[query.Length];
        int length = 0;
        for (int i = 0; i < query.Length; i++)
        {
            if (query[i] == '%' && i + 2 < query.Length &&
                byte.TryParse(query.Slice(i + 1, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out byte b))
            {
                decoded[length++] = b;
                i += 2;
            }
            else
            {
                decoded[length++] = query[i] < 0x80 ? (byte)query[i] : (byte)0xFF;
            }
        }
        return System.Text.Unicode.Utf8.IsValid(decoded[..length]);
    }

    public static void GroupName(string group)
    {
        if (!TopicName.IsValid(group))
        {
            throw ApiException.BadRequest("invalid_group_name", "A group name is 1-249 characters of [a-zA-Z0-9._-], and not '.' or '..'.");
        }
    }

    /// <summary>A group that Kafka clients are members of is theirs until they leave: one protocol at a time (409 <c>group_in_use</c>).</summary>
    public static void NotHeldByKafka(string group, HttpContext context)
    {
        if (context.RequestServices.GetService<Gateway.KafkaProtocol.Groups.KafkaGroupCoordinator>() is { } kafka && kafka.HasMembers(group))
        {
            throw new ApiException(StatusCodes.Status409Conflict, "group_in_use", $"Group '{group}' has members that are Kafka clients; a group is used over one protocol at a time.");
        }
    }

    public static void SessionTimeout(int? sessionTimeoutMs, GroupOptions options)
    {
        if (sessionTimeoutMs is int timeout && (timeout < options.MinSessionTimeoutMs || timeout > options.MaxSessionTimeoutMs))
        {
            throw ApiException.BadRequest("invalid_session_timeout", $"sessionTimeoutMs is between {options.MinSessionTimeoutMs} and {options.MaxSessionTimeoutMs}.");
        }
    }
}
