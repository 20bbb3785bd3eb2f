using System.Text.RegularExpressions;
using Serilog.Core;
using Serilog.Events;

namespace Gateway.Server.Security;

/// <summary>
/// Removes credentials from every log event, whoever wrote it: an <c>access_token</c> in a logged URL or query
/// string (ASP.NET's own request logs print the full URL at Information) and bearer values.
/// </summary>
internal sealed partial class RedactSecrets : ILogEventEnricher
{
    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        List<LogEventProperty>? changed = null;
        foreach (var (name, value) in logEvent.Properties)
        {
            if (value is ScalarValue { Value: string text } && Secret().IsMatch(text))
            {
                (changed ??= []).Add(new LogEventProperty(name, new ScalarValue(Secret().Replace(text, "$1[redacted]"))));
            }
        }
        foreach (var property in changed ?? [])
        {
            logEvent.AddOrUpdateProperty(property);
        }
    }

    [GeneratedRegex(@"((?:access_token=|Bearer\s+))[^&\s""]+", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Secret();
}
