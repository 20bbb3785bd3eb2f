using System.Text.RegularExpressions;
using Gateway.Server.Errors;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Security;

/// <summary>The kind of resource an operation acts on.</summary>
public enum ResourceKind
{
    Topic,
    Group,
}

/// <summary>Endpoint metadata: the caller needs one of <see cref="AnyOf"/> on the route's topic or group.</summary>
public sealed record AccessRequirement(ResourceKind Kind, string[] AnyOf);

/// <summary>Endpoint metadata: the endpoint lists or checks resources itself, but the caller must be authenticated.</summary>
public sealed record AuthenticatedOnly;

/// <summary>Endpoint metadata: the credential may come as <c>?access_token=</c> (event streams: EventSource cannot set headers).</summary>
public sealed record AcceptsAccessToken;

/// <summary>Operation names used in rules and requirements.</summary>
public static class Operations
{
    public const string Produce = "produce";
    public const string Fetch = "fetch";
    public const string Admin = "admin";
    public const string Consume = "consume";

    /// <summary>Reading <c>/metrics</c>, which shows every topic and group: granted by a rule naming it, whatever its patterns.</summary>
    public const string Metrics = "metrics";

    /// <summary>Any topic operation: enough to see (describe, list) a topic.</summary>
    public static readonly string[] AnyOnTopic = [Produce, Fetch, Admin];

    /// <summary>Any group operation: enough to see (describe, list) a group.</summary>
    public static readonly string[] AnyOnGroup = [Consume, Admin];
}

/// <summary>
/// Decides, per request and resource, whether the caller may act: 401 <c>unauthorized</c> without (valid)
/// credentials where they are needed, 403 <c>forbidden</c> when no rule grants the operation.
/// </summary>
public sealed class AccessControl
{
    public const string Anonymous = "anonymous";

    private readonly AuthOptions _options;
    private readonly List<CompiledRule> _rules;

    public AccessControl(IOptions<AuthOptions> options)
    {
        _options = options.Value;
        _rules = [.. _options.Rules.Select(r => new CompiledRule(
            [.. r.Principals.Select(Glob)], [.. r.Topics.Select(Glob)], [.. r.Groups.Select(Glob)],
            [.. r.Operations.Select(o => o.ToLowerInvariant())]))];
    }

    /// <summary>Whether requests must carry credentials (some are configured and anonymous access is not allowed).</summary>
    public bool CredentialsRequired => _options.CredentialsConfigured && !_options.AllowAnonymous;

    /// <summary>The caller's principal name, or throws 401 when credentials are required and missing or invalid.</summary>
    public string PrincipalOf(HttpContext context)
    {
        if (context.User.Identity is { IsAuthenticated: true, Name: { } name })
        {
            return name;
        }
        if (context.Items[AuthFailureKey] is string failure)
        {
            throw Unauthorized("invalid_credentials", failure);
        }
        if (CredentialsRequired)
        {
            throw Unauthorized("unauthorized", "Send credentials: Authorization: Bearer <API key or JWT> (for SSE from a browser, ?access_token=).");
        }
        return Anonymous;
    }

    /// <summary>Throws 401/403 unless the caller may perform one of <paramref name="anyOf"/> on the resource.</summary>
    public void Demand(HttpContext context, ResourceKind kind, string name, params string[] anyOf)
    {
        string principal = PrincipalOf(context);
        if (!IsAllowed(principal, kind, name, anyOf))
        {
            string what = kind == ResourceKind.Topic ? "topic" : "group";
            throw new ApiException(StatusCodes.Status403Forbidden, "forbidden", $"'{principal}' may not {string.Join(" or ", anyOf)} {what} '{name}'.");
        }
    }

    /// <summary>
    /// Throws 401/403 unless the caller may read <c>/metrics</c>: without rules, any caller who may call at all; with
    /// rules, one that a rule grants <c>metrics</c> (by name, or <c>*</c> together with <c>*</c> for topics and groups).
    /// </summary>
    public void DemandMetrics(HttpContext context)
    {
        string principal = PrincipalOf(context);
        if (_rules.Count > 0 && !_rules.Exists(r => r.Principals.Any(p => p.IsMatch(principal)) && r.GrantsMetrics))
        {
            throw new ApiException(StatusCodes.Status403Forbidden, "forbidden", $"'{principal}' may not read metrics (a rule must grant 'metrics').");
        }
    }

    /// <summary>Whether the caller may see the resource at all (any operation): used to filter lists.</summary>
    public bool CanSee(HttpContext context, ResourceKind kind, string name) =>
        IsAllowed(PrincipalOf(context), kind, name, kind == ResourceKind.Topic ? Operations.AnyOnTopic : Operations.AnyOnGroup);

    public bool IsAllowed(string principal, ResourceKind kind, string name, string[] anyOf)
    {
        if (_rules.Count == 0)
        {
            // No rules: with no credentials configured everyone is trusted (loopback or explicitly allowed); with
            // credentials, everyone who authenticated. An allowed anonymous caller is trusted too.
            return true;
        }
        foreach (var rule in _rules)
        {
            if (!rule.Principals.Any(p => p.IsMatch(principal)))
            {
                continue;
            }
            var patterns = kind == ResourceKind.Topic ? rule.Topics : rule.Groups;
            if (patterns.Any(p => p.IsMatch(name)) && anyOf.Any(op => rule.Operations.Contains("*") || rule.Operations.Contains(op)))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Key in <see cref="HttpContext.Items"/> of why presented credentials were refused.</summary>
    internal static readonly object AuthFailureKey = new();

    private static ApiException Unauthorized(string code, string detail) => new(
        StatusCodes.Status401Unauthorized, code, detail, headers: new Dictionary<string, string> { ["WWW-Authenticate"] = "Bearer" });

    /// <summary>A name pattern: literal, with <c>*</c> for any run of characters; anchored at both ends (<c>\z</c>, since <c>$</c> also matches before a final newline).</summary>
    internal static Regex Glob(string pattern) =>
        new(@"\A" + Regex.Escape(pattern).Replace("\\*", ".*", StringComparison.Ordinal) + @"\z", RegexOptions.CultureInvariant | RegexOptions.Singleline, TimeSpan.FromMilliseconds(100));

    private sealed record CompiledRule(List<Regex> Principals, List<Regex> Topics, List<Regex> Groups, List<string> Operations)
    {
        public bool GrantsMetrics { get; } = Operations.Contains(Gateway.Server.Security.Operations.Metrics)
            || (Operations.Contains("*") && Topics.Exists(IsEverything) && Groups.Exists(IsEverything));

        private static bool IsEverything(Regex pattern) => pattern.ToString() == Glob("*").ToString();
    }
}
