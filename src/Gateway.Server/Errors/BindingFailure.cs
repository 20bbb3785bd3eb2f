using System.Text.RegularExpressions;

namespace Gateway.Server.Errors;

/// <summary>
/// ASP.NET's own refusals of a request's parameters (a query value that is not a number, a missing body), told in
/// the request's terms: which parameter, what it takes, what was sent — never .NET's type names.
/// </summary>
internal static partial class BindingFailure
{
    public static ApiException? Problem(BadHttpRequestException bad)
    {
        string message = bad.Message;
        if (FailedToBind().Match(message) is { Success: true } failed)
        {
            string name = failed.Groups["name"].Value;
            string code = name == "partition" ? "invalid_partition" : "invalid_parameter";
            return ApiException.BadRequest(code, $"'{name}' is {Expected(failed.Groups["type"].Value)}; '{failed.Groups["value"].Value}' is not.");
        }
        if (RequiredMissing().Match(message) is { Success: true } missing)
        {
            return missing.Groups["source"].Value == "body"
                ? ApiException.BadRequest("invalid_request", "This operation takes a JSON body; none was sent.")
                : ApiException.BadRequest("missing_parameter", $"'{missing.Groups["name"].Value}' is required.");
        }
        if (message.StartsWith("Implicit body inferred", StringComparison.Ordinal) || message.Contains("no body was provided", StringComparison.Ordinal))
        {
            return ApiException.BadRequest("invalid_request", "This operation takes a JSON body; none was sent.");
        }
        if (bad.StatusCode == StatusCodes.Status415UnsupportedMediaType || message.StartsWith("Expected a supported JSON media type", StringComparison.Ordinal))
        {
            return new ApiException(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "This operation takes an application/json body.");
        }
        return null;
    }

    private static string Expected(string type) => type.Replace("Nullable<", "", StringComparison.Ordinal).TrimEnd('>') switch
    {
        "int" or "Int32" or "long" or "Int64" => "a whole number",
        "bool" or "Boolean" => "true or false",
        _ => "of another form",
    };

    [GeneratedRegex("""^Failed to bind parameter "(?<type>\S+) (?<name>[^"]+)" from "(?<value>.*)"\.$""", RegexOptions.Singleline)]
    private static partial Regex FailedToBind();

    [GeneratedRegex("""^Required parameter "(?<type>\S+) (?<name>[^"]+)" was not provided from (?<source>\w+)""")]
    private static partial Regex RequiredMissing();
}
