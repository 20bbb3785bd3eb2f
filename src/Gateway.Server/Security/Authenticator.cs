using System.Collections.Frozen;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
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

    public Authenticator(IOptions<AuthOptions> options)
    {
        var auth = options.Value;
        _keysByHash = auth.ApiKeys.ToFrozenDictionary(k => k.Hash.Trim().ToLowerInvariant(), k => k.Name, StringComparer.Ordinal);
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
        string? token = BearerOf(context.Request);
        if (token is null)
        {
            return;
        }
        if (_jwt is not null && token.Count(c => c == '.') == 2)
        {
            var result = await _tokens.ValidateTokenAsync(token, _jwt);
            if (result.IsValid && result.ClaimsIdentity.Name is { Length: > 0 })
            {
                context.User = new ClaimsPrincipal(result.ClaimsIdentity);
                return;
            }
            context.Items[AccessControl.AuthFailureKey] = result.IsValid
                ? $"The token has no '{_jwt.NameClaimType}' claim to name its principal."
                : $"The token is not valid ({Reason(result.Exception)}).";
            return;
        }
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        if (_keysByHash.TryGetValue(hash, out string? name))
        {
            context.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], "ApiKey"));
            return;
        }
        context.Items[AccessControl.AuthFailureKey] = "The credential is not a known API key or a valid token.";
    }

    private static string? BearerOf(HttpRequest request)
    {
        string? header = request.Headers.Authorization;
        if (header is not null)
        {
            return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : "";
        }
        // Only event streams take the credential from the query: EventSource cannot send headers.
        if (HttpMethods.IsGet(request.Method) && request.Path.Value?.EndsWith("/events", StringComparison.Ordinal) == true
            && request.Query.TryGetValue(AccessTokenParameter, out var query))
        {
            return query.ToString();
        }
        return null;
    }

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
