using System.Text.Json;
using Gateway.Storage;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Gateway.Server.Errors;

/// <summary>
/// The one place where failures become answers: every error is RFC 9457 problem+json with a stable snake_case
/// <c>code</c>. Client mistakes are 4xx; storage failures 5xx; nothing leaks a stack trace.
/// </summary>
internal sealed partial class ProblemMapping(IProblemDetailsService problems, ILogger<ProblemMapping> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is OperationCanceledException && httpContext.RequestAborted.IsCancellationRequested)
        {
            // The client left; there is no one to answer. 499 (nginx's "client closed request") keeps it out of the 5xx figures.
            httpContext.Response.StatusCode = 499;
            return true;
        }
        // A body that is not the JSON expected is told in the request's terms (which field, what was wrong).
        exception = exception switch
        {
            BadHttpRequestException { InnerException: JsonException json } => JsonBody.Problem(json),
            BadHttpRequestException bad when BindingFailure.Problem(bad) is { } told => told,
            JsonException json => JsonBody.Problem(json),
            _ => exception,
        };
        var (status, code, title, extensions) = Map(exception);
        if (status >= 500 && code != "shutting_down")
        {
            LogServerError(logger, code, exception);
        }
        var problem = new ProblemDetails
        {
            Status = status,
            Title = title,
            Detail = status == StatusCodes.Status500InternalServerError && code == "internal_error" ? "The server failed to handle the request." : exception.Message,
            Type = $"https://gateway.dev/problems/{code.Replace('_', '-')}",
        };
        problem.Extensions["code"] = code;
        foreach (var (key, value) in extensions)
        {
            problem.Extensions[key] = value;
        }
        httpContext.Response.StatusCode = status;
        if (exception is ApiException { Headers: var headers })
        {
            foreach (var (name, value) in headers)
            {
                httpContext.Response.Headers[name] = value;
            }
        }
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }

    /// <summary>Whether the exception is an expected answer (no error log, no diagnostics).</summary>
    public static bool IsExpected(Exception exception) => exception is JsonException or BadHttpRequestException { StatusCode: < 500 } || Map(exception) is { Status: < 500 } or { Code: "shutting_down" };

    private static (int Status, string Code, string Title, IReadOnlyDictionary<string, object?> Extensions) Map(Exception exception) => exception switch
    {
        ApiException api => (api.Status, api.Code, TitleFor(api.Status), api.Extensions),
        TopicNotFoundException => (404, "topic_not_found", "Topic not found", Empty),
        PartitionNotFoundException p => (404, "partition_not_found", "Partition not found", new Dictionary<string, object?> { ["partitionCount"] = p.PartitionCount }),
        TopicExistsException => (409, "topic_exists", "Topic exists", Empty),
        OffsetOutOfRangeException o => (416, "offset_out_of_range", "Offset out of range", new Dictionary<string, object?>
        {
            ["offset"] = o.Offset,
            ["beginOffset"] = o.BeginOffset,
            ["endOffset"] = o.EndOffset,
        }),
        OffsetMismatchException m => (412, "offset_mismatch", "Offset mismatch", new Dictionary<string, object?>
        {
            ["expectedOffset"] = m.ExpectedOffset,
            ["endOffset"] = m.EndOffset,
        }),
        BatchTooLargeException b => (413, "batch_too_large", "Batch too large", new Dictionary<string, object?> { ["sizeBytes"] = b.Size, ["maxBatchBytes"] = b.Limit }),
        UnknownMemberException => (404, "unknown_member", "Unknown member", Empty),
        GroupNotFoundException => (404, "group_not_found", "Group not found", Empty),
        StaleGenerationException s => (409, "stale_generation", "Stale generation", new Dictionary<string, object?> { ["generation"] = s.Given, ["currentGeneration"] = s.Current }),
        PartitionNotAssignedException p => (409, "partition_not_assigned", "Partition not assigned", new Dictionary<string, object?>
        {
            ["partitions"] = p.Partitions.Select(tp => new Dictionary<string, object> { ["topic"] = tp.Topic, ["partition"] = tp.Partition }).ToList(),
        }),
        GroupNotEmptyException => (409, "group_not_empty", "Group not empty", Empty),
        IdempotencyKeyReusedException => (422, "idempotency_key_reused", "Idempotency key reused", Empty),
        InsufficientStorageException i => (507, "insufficient_storage", "Insufficient storage", new Dictionary<string, object?> { ["freeBytes"] = i.FreeBytes }),
        LogCorruptedException => (500, "log_corrupted", "Stored data is damaged", Empty),
        StorageFailureException => (503, "storage_unavailable", "Storage unavailable", Empty),
        NotSupportedByBackendException n => (501, "not_supported", "Not supported", new Dictionary<string, object?> { ["capability"] = n.Capability }),
        BadHttpRequestException { StatusCode: 413 } => (413, "request_too_large", "Request too large", Empty),
        BadHttpRequestException bad => (bad.StatusCode, bad.StatusCode == 400 ? "invalid_request" : "bad_request", TitleFor(bad.StatusCode), Empty),
        _ => (500, "internal_error", "Internal error", Empty),
    };

    private static readonly IReadOnlyDictionary<string, object?> Empty = new Dictionary<string, object?>();

    private static string TitleFor(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        429 => "Too many requests",
        404 => "Not found",
        409 => "Conflict",
        412 => "Precondition failed",
        413 => "Content too large",
        415 => "Unsupported media type",
        416 => "Range not satisfiable",
        422 => "Unprocessable content",
        _ => "Error",
    };

    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "Request failed with {Code}")]
    private static partial void LogServerError(ILogger logger, string code, Exception exception);
}
