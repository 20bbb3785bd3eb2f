namespace Gateway.Server.Hosting;

/// <summary>
/// A request the API refuses: becomes an <c>application/problem+json</c> answer with this status and stable code.
/// Thrown by request validation; domain exceptions from the engine are mapped in <see cref="ProblemMapping"/>.
/// </summary>
public sealed class ApiException(int status, string code, string detail, IReadOnlyDictionary<string, object?>? extensions = null)
    : Exception(detail)
{
    public int Status { get; } = status;

    public string Code { get; } = code;

    public IReadOnlyDictionary<string, object?> Extensions { get; } = extensions ?? new Dictionary<string, object?>();

    public static ApiException BadRequest(string code, string detail) => new(StatusCodes.Status400BadRequest, code, detail);
}
