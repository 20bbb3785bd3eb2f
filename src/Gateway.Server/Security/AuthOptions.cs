namespace Gateway.Server.Security;

/// <summary>
/// The <c>Auth</c> section: who may call (API keys, JWT bearer tokens) and what each principal may do (rules).
/// Without credentials configured every request is anonymous and may do everything, which the server allows only
/// when it listens on loopback addresses alone, or when <see cref="AllowAnonymous"/> says so.
/// </summary>
public sealed class AuthOptions
{
    /// <summary>Accept requests without credentials as the principal <c>anonymous</c> (subject to the rules).</summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>API keys, sent as <c>Authorization: Bearer &lt;key&gt;</c>; only their SHA-256 is configured.</summary>
    public List<ApiKeyEntry> ApiKeys { get; set; } = [];

    /// <summary>JWT bearer tokens; off unless signing keys are configured.</summary>
    public JwtSettings Jwt { get; set; } = new();

    /// <summary>What principals may do. Empty: every authenticated principal may do everything.</summary>
    public List<AccessRule> Rules { get; set; } = [];

    /// <summary>Whether any way to authenticate is configured.</summary>
    public bool CredentialsConfigured => ApiKeys.Count > 0 || Jwt.Enabled;
}

/// <summary>An API key: the principal's name and the lowercase hex SHA-256 of the key.</summary>
public sealed class ApiKeyEntry
{
    public string Name { get; set; } = "";

    public string Hash { get; set; } = "";
}

/// <summary>JWT validation: issuer, audience and the keys that may sign (HMAC secrets in base64, or RSA/EC public keys in PEM).</summary>
public sealed class JwtSettings
{
    public string? Issuer { get; set; }

    public string? Audience { get; set; }

    /// <summary>Symmetric (HS256/384/512) keys, base64.</summary>
    public List<string> SigningKeys { get; set; } = [];

    /// <summary>Asymmetric public keys (RS*/PS*/ES*), PEM.</summary>
    public List<string> PublicKeys { get; set; } = [];

    /// <summary>The claim that names the principal the rules match.</summary>
    public string NameClaim { get; set; } = "sub";

    /// <summary>
    /// The principals this issuer's tokens may name: names or globs (<c>*</c>), e.g. <c>["svc-*"]</c>. Empty: any name
    /// except an API key's, so that an identity provider's key can never act as an API-key principal; an API key's name
    /// is allowed only where listed here (by itself or by a glob).
    /// </summary>
    public List<string> Principals { get; set; } = [];

    /// <summary>Leeway for expiry and not-before checks.</summary>
    public int ClockSkewSeconds { get; set; } = 30;

    public bool Enabled => SigningKeys.Count > 0 || PublicKeys.Count > 0;
}

/// <summary>
/// A grant: the <see cref="Principals"/> (names, <c>*</c> for any) may perform <see cref="Operations"/> on topics
/// matching <see cref="Topics"/> and groups matching <see cref="Groups"/>. Patterns are literal names or globs with
/// <c>*</c> (any run of characters). Topic operations: <c>produce</c>, <c>fetch</c>, <c>admin</c>; group
/// operations: <c>consume</c>, <c>admin</c>; <c>*</c> for all.
/// </summary>
public sealed class AccessRule
{
    public List<string> Principals { get; set; } = [];

    public List<string> Topics { get; set; } = [];

    public List<string> Groups { get; set; } = [];

    public List<string> Operations { get; set; } = [];
}
