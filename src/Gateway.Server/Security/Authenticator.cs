using System.Collections.Frozen;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Security;

/// <summary>
/// Turns the request's bearer credential into a principal: an API key (compared by its SHA-256) or a JWT (signature,
/// issuer, audience and lifetime validated). EventSource cannot set headers, so SSE GETs may carry the credential as
/// <c>?access_token=</c> instead; request logs never contain the query string.
/// </summary>
public sealed class Authenticator
{
    public const string AccessTokenParameter = "access_token";

    private readonly FrozenDictionary<string, string> _keysByHash;
    private readonly TokenValidationParameters? _jwt;
    private readonly JsonWebTokenHandler _tokens = new();
    private readonly Func<string, bool> _jwtMayName;

    public Authenticator(IOptions<AuthOptions> options)
    {
        var auth = options.Value;
        _keysByHash = auth.ApiKeys.ToFrozenDictionary(k => k.Hash.Trim().ToLowerInvariant(), k => k.Name, StringComparer.Ordinal);
        var keyPrincipals = auth.ApiKeys.Select(k => k.Name).ToHashSet(StringComparer.Ordinal);
        List<Regex> allowed = [.. auth.Jwt.Principals.Select(AccessControl.Glob)];
        // A token may name what the issuer is configured to name; unconfigured, anything but an API key's principal.
        _jwtMayName = allowed.Count > 0 ? name => allowed.Exists(p => p.IsMatch(name)) : name => !keyPrincipals.Contains(name);
        if (auth.Jwt.Enabled)
        {
            var jwt = auth.Jwt;
            _jwt = new TokenValidationParameters
            {
                ValidIssuer = jwt.Issuer,
                ValidateIssuer = jwt.Issuer is not null,
                ValidAudience = jwt.Audience,
                ValidateAudience = jwt.Audience is not null,
                IssuerSigningKeys = [.. jwt.SigningKeys.Select(k => (SecurityKey)new SymmetricSecurityKey(Convert.FromBase64String(k))), .. jwt.PublicKeys.Select(PublicKey)],
                ValidateIssuerSigningKey = true,
                RequireSignedTokens = true,
                RequireExpirationTime = true,
                ValidateLifetime = true,
                ClockSkew = TimeSpan.FromSeconds(jwt.ClockSkewSeconds),
                NameClaimType = jwt.NameClaim,
            };
        }
    }

    /// <summary>Authenticates the request: sets <see cref="HttpContext.User"/>, or notes why the credential was refused.</summary>
    public async Task AuthenticateAsync(HttpContext context)
    {
        string? token = BearerOf(context);
        if (token is null)
        {
            return;
        }
        var (user, failure) = await AuthenticateCredentialAsync(token);
        if (user is not null)
        {
            context.User = user;
        }
        else
        {
            context.Items[AccessControl.AuthFailureKey] = failure;
        }
    }

    /// <summary>
    /// Who a credential names: an API key or a JWT, as sent after <c>Bearer</c> over HTTP or as the password of Kafka's
    /// SASL PLAIN (or OAUTHBEARER's token). Either the principal, or why the credential was refused.
    /// </summary>
    public async Task<(ClaimsPrincipal? User, string? Failure)> AuthenticateCredentialAsync(string token)
    {
        if (_jwt is not null && token.Count(c => c == '.') == 2)
        {
            if (StrictnessProblem(token) is { } problem)
            {
                return (null, $"The token is not valid ({problem}).");
            }
            var result = await _tokens.ValidateTokenAsync(token, _jwt);
            if (result.IsValid && result.ClaimsIdentity.Name is { Length: > 0 } subject)
            {
                return subject.Any(char.IsControl) || !_jwtMayName(subject)
                    ? (null, $"The token's issuer may not name the principal '{Printable(subject)}'.")
                    : (new ClaimsPrincipal(result.ClaimsIdentity), null);
            }
            return (null, result.IsValid
                ? $"The token has no '{_jwt.NameClaimType}' claim to name its principal."
                : $"The token is not valid ({Reason(result.Exception)}).");
        }
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        return _keysByHash.TryGetValue(hash, out string? name)
            ? (new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], "ApiKey")), null)
            : (null, "The credential is not a known API key or a valid token.");
    }

    private static string? BearerOf(HttpContext context)
    {
        var request = context.Request;
        string? header = request.Headers.Authorization;
        if (header is not null)
        {
            return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : "";
        }
        // Only the event-stream endpoints take the credential from the query (EventSource cannot send headers): known
        // by the route that matched, not by how the path ends.
        if (context.GetEndpoint()?.Metadata.GetMetadata<AcceptsAccessToken>() is not null && request.Query.TryGetValue(AccessTokenParameter, out var query))
        {
            return query.ToString();
        }
        return null;
    }

    /// <summary>
    /// What the token's JSON says ambiguously, which the token library would let through: a header or claim given
    /// twice (parsers disagree on which one counts), or a time claim that is not a number. Null when there is none.
    /// </summary>
    private static string? StrictnessProblem(string token)
    {
        string[] parts = token.Split('.');
        for (int part = 0; part < 2; part++)
        {
            byte[] json;
            try
            {
                json = Base64UrlDecode(parts[part]);
            }
            catch (FormatException)
            {
                return "malformed";
            }
            var reader = new Utf8JsonReader(json);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            try
            {
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                {
                    return "malformed";
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    string name = reader.GetString()!;
                    if (!seen.Add(name))
                    {
                        return $"'{name}' given twice";
                    }
                    reader.Read();
                    if (part == 1 && name is "exp" or "nbf" or "iat" && reader.TokenType != JsonTokenType.Number)
                    {
                        return $"'{name}' is not a number";
                    }
                    reader.Skip();
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                return "malformed";
            }
        }
        return null;
    }

    private static byte[] Base64UrlDecode(string text)
    {
        string padded = text.Replace('-', '+').Replace('_', '/');
        padded += (padded.Length % 4) switch { 2 => "==", 3 => "=", 0 => "", _ => throw new FormatException() };
        return Convert.FromBase64String(padded);
    }

    private static string Printable(string name) => new([.. name.Select(c => char.IsControl(c) ? '?' : c)]);

    private static string Reason(Exception? exception) => exception switch
    {
        SecurityTokenExpiredException => "expired",
        SecurityTokenNotYetValidException => "not yet valid",
        SecurityTokenInvalidIssuerException => "wrong issuer",
        SecurityTokenInvalidAudienceException => "wrong audience",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "bad signature",
        SecurityTokenNoExpirationException => "no expiry",
        _ => "malformed",
    };

    private static SecurityKey PublicKey(string pem)
    {
        try
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return new RsaSecurityKey(rsa);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec);
        }
    }
}
