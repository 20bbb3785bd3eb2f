using System.Text.RegularExpressions;
using Serilog.Core;
using Serilog.Events;

namespace Gateway.Server.Security;

/// <summary>
/// Removes credentials from every log event, whoever wrote it: bearer values, and the value of every query parameter
/// whose name is <c>access_token</c> once percent-decoded and compared without case — every spelling the server
/// authenticates with (<c>?access%5Ftoken=</c>, <c>?%61ccess_token=</c>, <c>?ACCESS_TOKEN=</c>), since ASP.NET's query
/// collection decodes names and ignores their case. ASP.NET's own request logs print the full URL at Information.
/// </summary>
internal sealed partial class RedactSecrets : ILogEventEnricher
{
    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        List<LogEventProperty>? changed = null;
        foreach (var (name, value) in logEvent.Properties)
        {
            if (value is ScalarValue { Value: string text } && Redact(text) is var redacted && !ReferenceEquals(redacted, text))
            {
                (changed ??= []).Add(new LogEventProperty(name, new ScalarValue(redacted)));
            }
        }
        foreach (var property in changed ?? [])
        {
            logEvent.AddOrUpdateProperty(property);
        }
    }

    /// <summary>The text with every credential replaced by <c>[redacted]</c>; the same instance when it holds none.</summary>
    public static string Redact(string text)
    {
        string result = text;
        if (text.Contains('=', StringComparison.Ordinal))
        {
            result = Parameter().Replace(result, match => IsAccessToken(match.Groups["name"].Value) ? $"{match.Groups["name"].Value}=[redacted]" : match.Value);
        }
        if (result.Contains("earer", StringComparison.OrdinalIgnoreCase))
        {
            result = Bearer().Replace(result, "$1[redacted]");
        }
        return result == text ? text : result;
    }

    private static bool IsAccessToken(string name)
    {
        string decoded = name;
        try
        {
            decoded = Uri.UnescapeDataString(name.Replace('+', ' '));
        }
        catch (UriFormatException)
        {
        }
        return decoded.Equals(Authenticator.AccessTokenParameter, StringComparison.OrdinalIgnoreCase);
    }

    // A query parameter: its name (anything up to '=') after '?', '&' or ';', and its value up to the next separator.
    [GeneratedRegex(@"(?<=^|[?&;\s])(?<name>[^=&;?\s""]+)=(?<value>[^&;\s""]*)", RegexOptions.CultureInvariant)]
    private static partial Regex Parameter();

    [GeneratedRegex(@"(Bearer\s+)[^&\s""]+", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Bearer();
}
