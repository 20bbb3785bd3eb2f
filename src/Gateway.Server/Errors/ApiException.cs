namespace Gateway.Server.Errors;

/// <summary>
/// A request the API refuses: becomes an <c>application/problem+json</c> answer with this status and stable code.
/// Thrown by request validation; domain exceptions from the engine are mapped in <see cref="ProblemMapping"/>.
/// </summary>
public sealed class ApiException(
    int status, string code, string detail, IReadOnlyDictionary<string, object?>? extensions = null, IReadOnlyDictionary<string, string>? headers = null)
    : Exception(detail)
{
    /// <summary>Response headers that belong to the answer, e.g. <c>Retry-After</c> or <c>WWW-Authenticate</c>.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; } = headers ?? new Dictionary<string, string>();

    public int Status { get; } = status;

    public string Code { get; } = code;

    public IReadOnlyDictionary<string, object?> Extensions { get; } = extensions ?? new Dictionary<string, object?>();

    public static ApiException BadRequest(string code, string detail) => new(StatusCodes.Status400BadRequest, code, detail);

    /// <summary>
    /// 501 <c>not_supported</c>: the storage backend does not offer what the request asks for (an expected offset, an
    /// idempotency key), named in <c>capability</c>. Nothing was done.
    /// </summary>
    public static ApiException NotSupported(string capability, string detail) =>
        new(StatusCodes.Status501NotImplemented, "not_supported", detail, new Dictionary<string, object?> { ["capability"] = capability });

    /// <summary>400 <c>invalid_config</c>, naming the topic setting (<c>key</c>) that was refused.</summary>
    public static ApiException InvalidConfig(string key, string detail) =>
        new(StatusCodes.Status400BadRequest, "invalid_config", detail, new Dictionary<string, object?> { ["key"] = key });
}
