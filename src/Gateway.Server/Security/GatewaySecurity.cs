using System.Net;
using Gateway.Server.Errors;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Security;

/// <summary>Composition of authentication, authorization, quotas and CORS, and the safe-by-default start check.</summary>
public static class GatewaySecurity
{
    public const string CorsPolicy = "gateway";

    public static WebApplicationBuilder AddGatewaySecurity(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuthOptions>().BindConfiguration("Auth");
        builder.Services.AddOptions<QuotaOptions>().BindConfiguration("Quotas");
        builder.Services.AddSingleton<Authenticator>();
        builder.Services.AddSingleton<AccessControl>();
        builder.Services.AddSingleton<Quotas>();
        builder.Services.AddSingleton<ExposureCheck>();
        string[] origins = builder.Configuration.GetSection("Cors:AllowedOrigins").Get<string[]>() ?? [];
        builder.Services.AddCors(o => o.AddPolicy(CorsPolicy, policy =>
        {
            policy.WithOrigins(origins)
                .AllowAnyMethod()
                .WithHeaders("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID")
                .WithExposedHeaders("Idempotency-Replayed", "Retry-After", "Location", "WWW-Authenticate")
                .SetPreflightMaxAge(TimeSpan.FromHours(1));
        }));
        return builder;
    }

    /// <summary>
    /// Listens on <c>http://localhost:8080</c> (the quick start's address) unless an address is configured in any of the
    /// ways ASP.NET reads: <c>urls</c> (<c>--urls</c>, <c>ASPNETCORE_URLS</c>, <c>DOTNET_URLS</c>), <c>http_ports</c> /
    /// <c>https_ports</c> (<c>ASPNETCORE_HTTP_PORTS</c>, as the official container images set it) or
    /// <c>Kestrel:Endpoints</c>. A default in appsettings.json would win over the environment's variables.
    /// </summary>
    public static WebApplicationBuilder ListenOnDefaultUnlessConfigured(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        bool configured = !string.IsNullOrEmpty(configuration["urls"]) || !string.IsNullOrEmpty(configuration["http_ports"])
            || !string.IsNullOrEmpty(configuration["https_ports"]) || configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();
        if (!configured)
        {
            builder.WebHost.UseUrls("http://localhost:8080");
        }
        return builder;
    }

    /// <summary>
    /// What the server bound, checked once it has started (<see cref="ExposureCheck"/>): null when it may serve, else
    /// why not — the server is then stopping.
    /// </summary>
    public static string? UnsafeExposure(this WebApplication app) => app.Services.GetRequiredService<ExposureCheck>().Check();

    /// <summary>
    /// Why the server must not start, or null: with no credentials configured, every request would be anonymous
    /// with every right, which is only safe when nothing but this machine can connect, or when the operator says so.
    /// </summary>
    public static string? UnsafeStartReason(IConfiguration configuration)
    {
        var auth = configuration.GetSection("Auth").Get<AuthOptions>() ?? new AuthOptions();
        if (auth.CredentialsConfigured || auth.AllowAnonymous)
        {
            return null;
        }
        var exposed = ListenAddresses(configuration).Where(a => !IsLoopback(a)).ToList();
        return exposed.Count == 0 ? null
            : $"Refusing to start: no credentials are configured (Auth:ApiKeys, Auth:Jwt) and the server would listen on {string.Join(", ", exposed)}, " +
              "reachable from other machines, with every right given to anyone. Configure credentials, listen on loopback only " +
              "(e.g. --urls http://127.0.0.1:8080), or set Auth:AllowAnonymous=true to accept anonymous requests knowingly.";
    }

    private static IEnumerable<string> ListenAddresses(IConfiguration configuration)
    {
        foreach (string url in (configuration["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            yield return url;
        }
        foreach (var endpoint in configuration.GetSection("Kestrel:Endpoints").GetChildren())
        {
            if (endpoint["Url"] is { } url)
            {
                yield return url;
            }
        }
        if (Hosting.KafkaListenerHosting.ListenAddress(configuration) is { } kafka)
        {
            yield return $"kafka://{kafka}";
        }
        foreach (string key in new[] { "http_ports", "https_ports" })
        {
            // ASP.NET's HTTP_PORTS (set in the official container images) listens on every interface.
            if (configuration[key] is { Length: > 0 } ports && configuration["urls"] is null or "")
            {
                yield return $"*:{ports}";
            }
        }
    }

    private static bool IsLoopback(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        string rest = scheme >= 0 ? url[(scheme + 3)..] : url;
        string host = rest.StartsWith('[') ? rest[1..rest.IndexOf(']', StringComparison.Ordinal)] : rest.Split(':', '/')[0];
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>
    /// After routing: authenticates, then checks the endpoint's <see cref="AccessRequirement"/> on the route's topic or
    /// group. API endpoints without a declared requirement are refused (fail closed); operational endpoints are open,
    /// but <c>/metrics</c> needs an authenticated caller when credentials are required.
    /// </summary>
    public static WebApplication UseGatewaySecurity(this WebApplication app)
    {
        if (app.Configuration.GetSection("Cors:AllowedOrigins").Get<string[]>() is { Length: > 0 })
        {
            app.UseCors(CorsPolicy);
        }
        var authenticator = app.Services.GetRequiredService<Authenticator>();
        var access = app.Services.GetRequiredService<AccessControl>();
        if (app.Services.GetRequiredService<IOptions<AuthOptions>>().Value is { } auth && (auth.CredentialsConfigured || auth.Rules.Count > 0))
        {
            // Without credentials or rules every caller may do everything: no middleware on the request path at all.
            app.Use(async (context, next) =>
            {
                await authenticator.AuthenticateAsync(context);
                Authorize(context, access);
                await next(context);
            });
        }
        return app;
    }

    private static void Authorize(HttpContext context, AccessControl access)
    {
        var endpoint = context.GetEndpoint();
        if (endpoint?.Metadata.GetMetadata<AccessRequirement>() is { } requirement)
        {
            string key = requirement.Kind == ResourceKind.Topic ? "topic" : "group";
            string name = context.Request.RouteValues[key] as string ?? "";
            access.Demand(context, requirement.Kind, name, requirement.AnyOf);
            return;
        }
        if (context.Request.Path.StartsWithSegments("/metrics", StringComparison.OrdinalIgnoreCase))
        {
            // Every topic and group, with sizes, offsets and lag: a grant of its own.
            access.DemandMetrics(context);
            return;
        }
        if (endpoint?.Metadata.GetMetadata<AuthenticatedOnly>() is not null)
        {
            access.PrincipalOf(context);
            return;
        }
        if (endpoint is not null && context.Request.Path.StartsWithSegments("/v1", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(StatusCodes.Status403Forbidden, "forbidden", "This endpoint declares no access rule.");
        }
    }

    /// <summary>The caller needs one of the operations on the route's <c>{topic}</c>.</summary>
    public static RouteHandlerBuilder RequireTopic(this RouteHandlerBuilder builder, params string[] anyOf) =>
        builder.WithMetadata(new AccessRequirement(ResourceKind.Topic, anyOf)).Problems401403();

    /// <summary>The caller needs one of the operations on the route's <c>{group}</c>.</summary>
    public static RouteHandlerBuilder RequireGroup(this RouteHandlerBuilder builder, params string[] anyOf) =>
        builder.WithMetadata(new AccessRequirement(ResourceKind.Group, anyOf)).Problems401403();

    /// <summary>The handler checks or filters resources itself; the caller must be authenticated when credentials are required.</summary>
    public static RouteHandlerBuilder RequireAuthenticated(this RouteHandlerBuilder builder) =>
        builder.WithMetadata(new AuthenticatedOnly()).Problems401403();

    private static RouteHandlerBuilder Problems401403(this RouteHandlerBuilder builder) =>
        builder.ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
}
