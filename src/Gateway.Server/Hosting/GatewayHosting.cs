using Gateway.Server.Errors;
using Gateway.Server.Observability;
using Gateway.Server.Records;
using Gateway.Server.Security;
using Gateway.Server.Storage;
using Gateway.Server.Streaming;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Prometheus;
using Serilog;
using Serilog.Events;

namespace Gateway.Server.Hosting;

/// <summary>Composition of the host: logging, options, storage, errors, OpenAPI, health.</summary>
public static class GatewayHosting
{
    /// <summary>
    /// The folder holding <c>appsettings.json</c>: the working directory when it has one (the repository root under
    /// <c>dotnet run</c>), else the application's own folder, where the build copies the root file.
    /// </summary>
    public static string? ContentRoot() =>
        File.Exists(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json")) ? null : AppContext.BaseDirectory;

    /// <summary>The runtime's switch (read once, when the first socket is used) for socket completions run inline.</summary>
    public const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Socket completions run on the runtime's socket threads (one per CPU) instead of one more trip through the thread
    /// pool each, which spares every request that hop and the wake-ups it costs (figures: docs/storage.md).
    /// Safe here because no request code runs there: Kestrel hands what a socket received to the application
    /// through the thread pool unless told otherwise (<c>UnsafePreferInlineScheduling</c>, left off), so the socket
    /// threads only move bytes between sockets and Kestrel's pipes. Must be called before the first socket is made;
    /// an operator's own value (<c>0</c> turns it off) is kept.
    /// </summary>
    public static void PreferInlineSocketCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
        }
    }

    private const string HostingDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";

    public static WebApplicationBuilder AddGatewayHosting(this WebApplicationBuilder builder)
    {
        // The sinks shipped with the server, named: without them the reader scans every dependency for Serilog
        // assemblies at each start, which slows it noticeably (figures: docs/storage.md). Sinks of other assemblies
        // are named under Serilog:Using.
        var sinks = new Serilog.Settings.Configuration.ConfigurationReaderOptions(
            typeof(ConsoleLoggerConfigurationExtensions).Assembly,
            typeof(FileLoggerConfigurationExtensions).Assembly,
            typeof(LoggerSinkConfigurationDebugExtensions).Assembly);
        builder.Services.AddSerilog((services, logger) =>
        {
            logger.ReadFrom.Configuration(builder.Configuration, sinks).ReadFrom.Services(services).Enrich.With<RedactSecrets>();
            if (builder.Configuration[$"Serilog:MinimumLevel:Override:{HostingDiagnostics}"] is null)
            {
                // ASP.NET's own request log repeats the one below. While its logger is enabled at all (at Critical,
                // which every Serilog level is), ASP.NET opens a logging scope and starts an Activity for every
                // request, a cost every request pays for lines the shipped settings filter out anyway (figures:
                // docs/storage.md). Off unless configured.
                logger.MinimumLevel.Override(HostingDiagnostics, LevelAlias.Off);
            }
        });
        builder.AddGatewaySecurity();

        builder.Services.AddOptions<ApiLimits>().BindConfiguration("Limits").ValidateDataAnnotations().ValidateOnStart();
        builder.AddStorage();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddOptions<StreamingOptions>().BindConfiguration("Streaming").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<SharedEventCache>();
        builder.Services.AddSingleton<Records.IdempotentRequests>();
        builder.Services.AddSingleton<GatewayMetrics>();
        builder.Services.AddSingleton<Topics.TopicEvents>();
        builder.Services.AddSingleton<KeepAliveTicker>();
        // The server listens while the storage opens (hosted services start together): liveness answers at once,
        // readiness says "not open" until it is, and other requests wait for it (see UseGatewayHosting). A long
        // recovery so never looks like a dead process, and the server's own start overlaps the recovery.
        builder.Services.Configure<HostOptions>(o => o.ServicesStartConcurrently = true);

        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var limits = context.Configuration.GetSection("Limits").Get<ApiLimits>() ?? new ApiLimits();
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = limits.MaxRequestBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = limits.MaxRequestHeadersBytes;
            kestrel.Limits.MaxRequestHeaderCount = limits.MaxRequestHeaderCount;
            kestrel.Limits.MaxConcurrentConnections = limits.MaxConnections > 0 ? limits.MaxConnections : null;
            kestrel.Limits.MaxConcurrentUpgradedConnections = limits.MaxConnections > 0 ? limits.MaxConnections : null;
            kestrel.Limits.MinRequestBodyDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(limits.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(5));
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(limits.RequestHeadersTimeoutSeconds);
        });
        builder.Services.Configure<JsonOptions>(o =>
        {
            // Strict bodies: a misspelt field or a number sent as a string is a 400, not silently ignored.
            o.SerializerOptions.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow;
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
            // {"a":1,"a":2} is ambiguous (parsers disagree on which wins): refused rather than guessed.
            o.SerializerOptions.AllowDuplicateProperties = false;
        });
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            if (!context.ProblemDetails.Extensions.ContainsKey("code"))
            {
                context.ProblemDetails.Extensions["code"] = context.ProblemDetails.Status switch
                {
                    404 => "not_found",
                    405 => "method_not_allowed",
                    415 => "unsupported_media_type",
                    >= 500 => "internal_error",
                    _ => "bad_request",
                };
            }
        });
        builder.Services.AddExceptionHandler<ProblemMapping>();
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer<OpenApiContract>());
        return builder;
    }

    /// <summary>Readiness as JSON: the status, and for each check its status and reason (e.g. which partition is damaged).</summary>
    private static Task WriteHealthAsync(HttpContext context, Microsoft.Extensions.Diagnostics.HealthChecks.HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsJsonAsync(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.Select(e => new { name = e.Key, status = e.Value.Status.ToString(), description = e.Value.Description }),
        });
    }

    /// <summary>What routing chose, kept for the request log and metrics.</summary>
    internal sealed record MatchedRoute(Endpoint? Endpoint, object? Topic, object? Group);

    /// <summary>Key in <see cref="HttpContext.Items"/> of the <see cref="MatchedRoute"/>.</summary>
    internal static readonly object MatchedEndpointKey = new();

    /// <summary>
    /// Takes the data directory's lock before anything listens or opens (one directory, one server): null when taken,
    /// else why this server must not start — another holds it, named with its process id where its lock file says.
    /// </summary>
    public static string? LockDataDirectory(this WebApplication app) => app.Services.GetRequiredService<IStorageHost>().Prepare();

    public static WebApplication UseGatewayHosting(this WebApplication app)
    {
        // Recovery of the log runs on the thread pool while the pipeline and the endpoints are set up and the server
        // starts listening; the host's start waits for it, and requests other than probes wait for it (below).
        app.Services.GetRequiredService<IStorageHost>().BeginOpen();
        var metrics = app.Services.GetRequiredService<GatewayMetrics>();
        // Outermost, so it logs the status the client got, after errors became problem answers.
        app.UseRequestLog(metrics);
        metrics.Attach(app.Services.GetRequiredService<IStorageHost>());
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            SuppressDiagnosticsCallback = context => ProblemMapping.IsExpected(context.Exception) || context.HttpContext.RequestAborted.IsCancellationRequested,
        });
        app.UseStatusCodePages();
        app.UseRouting();
        // Noted before the endpoint runs: the exception handler clears the endpoint and route values before the
        // logs and metrics look. One small object per request; the log properties are made only for a written log.
        // Until the storage is open only the health probes and metrics are answered; other requests wait for it.
        var storage = app.Services.GetRequiredService<IStorageHost>();
        var stopping = app.Lifetime.ApplicationStopping;
        var exposure = app.Services.GetRequiredService<ExposureCheck>();
        app.Use((context, next) =>
        {
            if (exposure.Check() is not null)
            {
                // Listening beyond loopback with nobody to authenticate: the server is stopping; nothing is served.
                throw ShuttingDown();
            }
            if (stopping.IsCancellationRequested)
            {
                // A request that arrives on a kept-alive connection while the server drains: told to go elsewhere now.
                throw ShuttingDown();
            }
            if (context.Request.QueryString.Value is { } query && !RequestChecks.QueryIsUtf8(query))
            {
                throw ApiException.BadRequest("invalid_utf8", "The query string is not valid UTF-8 once its %-escapes are decoded.");
            }
            var values = context.Request.RouteValues;
            context.Items[MatchedEndpointKey] = new MatchedRoute(
                context.GetEndpoint(), values.TryGetValue("topic", out object? topic) ? topic : null, values.TryGetValue("group", out object? group) ? group : null);
            return storage.IsOpen || IsProbe(context.Request.Path) ? next(context) : WaitForStorageAsync(context, next, storage);
        });
        app.UseGatewaySecurity();

        app.MapOpenApi("/openapi/{documentName}.json");
        // Only on its own path: the middleware would otherwise match every API request against its routes.
        app.UseWhen(
            context => context.Request.Path.StartsWithSegments("/swagger", StringComparison.OrdinalIgnoreCase),
            swagger => swagger.UseSwaggerUI(o =>
            {
                o.RoutePrefix = "swagger";
                o.SwaggerEndpoint("/openapi/v1.json", "Gateway v1");
            }));
        app.MapMetrics("/metrics", metrics.Registry);
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready"), ResponseWriter = WriteHealthAsync });
        return app;
    }

    private static ApiException ShuttingDown() => new(
        StatusCodes.Status503ServiceUnavailable, "shutting_down", "The server is stopping. Retry in a moment (against it once restarted, or another server).",
        headers: new Dictionary<string, string> { ["Retry-After"] = "1", ["Connection"] = "close" });

    private static bool IsProbe(PathString path) => path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");

    private static async Task WaitForStorageAsync(HttpContext context, RequestDelegate next, IStorageHost storage)
    {
        await storage.WhenOpenAsync(context.RequestAborted);
        await next(context);
    }

    /// <summary>
    /// Starts building every mapped endpoint (request delegates, metadata) on the thread pool, instead of on the
    /// first request, which would otherwise be far slower than the next ones (figures: docs/storage.md), and without
    /// holding up the server's start: it runs while the storage opens and the server begins to listen. A request that
    /// comes first waits for the build (routing takes the same lock); a build that fails fails that request as it
    /// would have anyway.
    /// </summary>
    public static WebApplication PrepareEndpoints(this WebApplication app)
    {
        var sources = ((IEndpointRouteBuilder)app).DataSources.ToArray();
        _ = Task.Run(() =>
        {
            foreach (var source in sources)
            {
                _ = source.Endpoints;
            }
        });
        return app;
    }
}
