using System.Text.Json;

namespace Gateway.Server.Errors;

/// <summary>
/// A JSON body the API could not read, as a problem in the request's terms: which field (as a JSON path without
/// <c>$.</c>), and whether the text was not JSON, a field unknown, or a value of the wrong type. A refused topic
/// setting (<c>config.*</c>) is <c>invalid_config</c> naming the key; anything else is <c>invalid_json</c>.
/// </summary>
internal static class JsonBody
{
    public static ApiException Problem(JsonException json)
    {
        string field = FieldOf(json.Path);
        if (field.StartsWith("config.", StringComparison.Ordinal) && IsConversion(json))
        {
            string key = field["config.".Length..];
            return ApiException.InvalidConfig(key, $"{key} {ExpectedConfig(key)}");
        }
        // A converter that meets the wrong token type fails the same way (an InvalidOperationException inside): only a
        // failure to transcode the text is about UTF-8.
        if (json.InnerException is System.Text.DecoderFallbackException
            || json.InnerException is InvalidOperationException { Message: var reason } && (reason.Contains("UTF-", StringComparison.Ordinal) || reason.Contains("surrogate", StringComparison.OrdinalIgnoreCase)))
        {
            // A string whose escapes are no character (a lone surrogate such as \ud800): no text to hand on.
            return ApiException.BadRequest("invalid_utf8", $"'{field}' holds an escape that is no character (a lone surrogate such as \\ud800).");
        }
        string detail = json switch
        {
            _ when IsConversion(json) && field.Length > 0 => $"'{field}' has a value of the wrong type, or one outside its allowed values.",
            _ when json.Message.Contains("could not be mapped", StringComparison.Ordinal) => $"'{UnknownField(json.Message, field)}' is not a field of this request.",
            _ when json.Message.Contains("Duplicate", StringComparison.OrdinalIgnoreCase) => $"A field appears twice in one object{(field.Length > 0 ? $" ('{field}')" : "")}.",
            _ => $"The body is not valid JSON{Where(json)}: {Reason(json)}",
        };
        return ApiException.BadRequest("invalid_json", detail);
    }

    private static string ExpectedConfig(string key) => key switch
    {
        "acks" => "is 'disk' or 'memory'.",
        "retentionMs" => "is a positive whole number of milliseconds, or -1 to keep records forever.",
        "retentionBytes" => "is a positive whole number of bytes per partition, or -1 for no limit.",
        "maxRecordBytes" => "is a positive whole number of bytes.",
        _ => "has a value of the wrong type.",
    };

    private static bool IsConversion(JsonException json) => json.Message.Contains("could not be converted", StringComparison.Ordinal);

    private static string FieldOf(string? path) =>
        path is null || path == "$" ? "" : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');

    private static string UnknownField(string message, string field)
    {
        int start = message.IndexOf('\'', StringComparison.Ordinal);
        int end = start < 0 ? -1 : message.IndexOf('\'', start + 1);
        string name = end > start ? message[(start + 1)..end] : "";
        return field.Length == 0 ? name : field.EndsWith(name, StringComparison.Ordinal) ? field : $"{field}.{name}";
    }

    private static string Where(JsonException json) =>
        json.LineNumber is long line && json.BytePositionInLine is long position ? $" (line {line + 1}, byte {position + 1})" : "";

    /// <summary>The reader's own reason (it speaks of the text, not of .NET), without the position it repeats.</summary>
    private static string Reason(JsonException json)
    {
        string message = json.InnerException?.Message ?? json.Message;
        int cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (cut < 0)
        {
            cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        }
        return (cut < 0 ? message : message[..cut]).TrimEnd(' ', '|');
    }
}
