using System.Collections;
using System.Diagnostics;
using System.Globalization;
using Gateway.Server.Hosting;

namespace Gateway.Server.Observability;

/// <summary>
/// The request log and the request-duration metric, from the outermost middleware: it sees the status the client got,
/// after errors became problem answers. Serilog's request-logging middleware did the logging before: it opens a
/// diagnostic context per request (an <c>AsyncLocal</c>, which every await of the request then carries), a cost every
/// request paid, logged or not (figures: docs/storage.md). Here nothing is made for a request that is not logged; a
/// logged one is one entry, whose properties a structured sink (Serilog) keeps as they are.
/// </summary>
internal static class RequestLog
{
    /// <summary>The log category (Serilog's <c>SourceContext</c>) whose level decides which requests are logged.</summary>
    public const string Category = "Gateway.Server.Requests";

    /// <summary>Logs every request at the level <see cref="LevelOf"/> gives, and observes its duration.</summary>
    public static void UseRequestLog(this WebApplication app, GatewayMetrics metrics)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(Category);
        app.Use(async (context, next) =>
        {
            long start = Stopwatch.GetTimestamp();
            Exception? failure = null;
            try
            {
                await next(context);
            }
            catch (Exception ex)
            {
                failure = ex;
                throw;
            }
            finally
            {
                var elapsed = Stopwatch.GetElapsedTime(start);
                var matched = context.Items[GatewayHosting.MatchedEndpointKey] as GatewayHosting.MatchedRoute;
                int status = failure is null ? context.Response.StatusCode : StatusCodes.Status500InternalServerError;
                metrics.ObserveRequest(context.GetEndpoint() ?? matched?.Endpoint, status, elapsed);
                var level = LevelOf(context, status, elapsed.TotalMilliseconds, failure);
                if (logger.IsEnabled(level))
                {
                    logger.Log(level, new EventId(1, "Request"), new Entry(context, matched, status, elapsed.TotalMilliseconds), failure, static (entry, _) => entry.ToString());
                }
            }
        });
    }

    /// <summary>Error for failures and 5xx; Warning for slow requests that are not meant to wait (long-polls, streams); else Information.</summary>
    private static LogLevel LevelOf(HttpContext context, int status, double elapsedMs, Exception? failure) =>
        failure is not null || status >= 500 ? LogLevel.Error
        : elapsedMs > 5000 && context.Request.Query["waitMs"].Count == 0 && context.Response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) != true ? LogLevel.Warning
        : LogLevel.Information;

    /// <summary>
    /// One request's log entry: the message template and its properties, which Serilog takes as a structured event.
    /// The path's route template and the topic, never the query string (an SSE access_token rides there) or headers.
    /// </summary>
    private sealed class Entry(HttpContext context, GatewayHosting.MatchedRoute? matched, int status, double elapsedMs) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        private const string Template = "HTTP {RequestMethod} {Route} topic={Topic} responded {StatusCode} in {Elapsed:0.000} ms";

        private readonly string _route = (matched?.Endpoint as RouteEndpoint)?.RoutePattern.RawText ?? "(no route)";

        // The group only where the route names one.
        public int Count => matched?.Group is null ? 8 : 9;

        public KeyValuePair<string, object?> this[int index] => index switch
        {
            0 => new("{OriginalFormat}", Template),
            1 => new("RequestMethod", context.Request.Method),
            2 => new("Route", _route),
            3 => new("Topic", matched?.Topic),
            4 => new("StatusCode", status),
            5 => new("Elapsed", elapsedMs),
            6 => new("RequestPath", context.Request.Path.Value),
            // The problem answers' traceId, so that a client's problem can be found in the log.
            7 => new("RequestId", context.TraceIdentifier),
            8 when Count == 9 => new("Group", matched!.Group),
            _ => throw new ArgumentOutOfRangeException(nameof(index)),
        };

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            for (int i = 0; i < Count; i++)
            {
                yield return this[i];
            }
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => string.Create(
            CultureInfo.InvariantCulture, $"HTTP {context.Request.Method} {_route} topic={matched?.Topic ?? "null"} responded {status} in {elapsedMs:0.000} ms");
    }
}
