using Gateway.Groups;
using Gateway.Log;

namespace Gateway.Server.Hosting;

/// <summary>Checks of request parameters that several endpoints share, each failing with its 400 code.</summary>
internal static class RequestChecks
{
    public static int InRange(int value, int min, int max, string name) =>
        value >= min && value <= max ? value : throw ApiException.BadRequest("invalid_parameter", $"{name} is between {min} and {max}.");

    public static void GroupName(string group)
    {
        if (!TopicName.IsValid(group))
        {
            throw ApiException.BadRequest("invalid_group_name", "A group name is 1-249 characters of [a-zA-Z0-9._-], and not '.' or '..'.");
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
