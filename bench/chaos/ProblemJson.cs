using System.Text.Json;

namespace Gateway.Chaos;

/// <summary>Reads the stable <c>code</c> of an RFC 9457 problem answer.</summary>
internal static class ProblemJson
{
    public static string? Code(byte[] answer)
    {
        try
        {
            using var json = JsonDocument.Parse(answer);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("code", out var code) ? code.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
