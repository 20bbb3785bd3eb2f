namespace Gateway.KafkaProtocol;

/// <summary>What a request acts on, for authorization.</summary>
public enum KafkaResource
{
    Topic,
    Group,
}

/// <summary>What a request does to its resource, in the host's terms (the HTTP API's operations).</summary>
public enum KafkaOperation
{
    /// <summary>Append records (Produce).</summary>
    Produce,

    /// <summary>Read records and offsets (Fetch, ListOffsets).</summary>
    Fetch,

    /// <summary>Create, grow, delete, delete records (topics); reset (groups).</summary>
    Admin,

    /// <summary>Be a member of a group and commit its offsets.</summary>
    Consume,

    /// <summary>See the resource at all (Metadata, DescribeConfigs, FindCoordinator, ListGroups, DescribeGroups): any operation on it.</summary>
    Describe,
}

/// <summary>The outcome of a SASL authentication: the principal, or why the credential was refused.</summary>
public readonly record struct KafkaAuthentication(string? Principal, string? Failure);

/// <summary>
/// The listener's security, given by the host: whether clients must authenticate (SASL PLAIN with an API key or
/// JWT as password, or OAUTHBEARER with a JWT), who a credential names, what each principal may do, and how long a
/// produce answer is held back to keep a principal within its quota. Without a host's, everything is allowed to the
/// anonymous principal.
/// </summary>
public interface IKafkaSecurity
{
    /// <summary>Whether every request but ApiVersions and the SASL ones needs an authenticated connection.</summary>
    bool SaslRequired { get; }

    /// <summary>Whether SASL is offered at all (credentials are configured).</summary>
    bool SaslOffered { get; }

    /// <summary>The principal of a connection that did not authenticate (when that is allowed).</summary>
    string AnonymousPrincipal { get; }

    /// <summary>Who the credential (an API key or a JWT) names.</summary>
    Task<KafkaAuthentication> AuthenticateAsync(string credential);

    bool IsAllowed(string principal, KafkaResource kind, string name, KafkaOperation operation);

    /// <summary>Charges a produce request of <paramref name="bytes"/>; returns how long to hold its answer back (zero within quota).</summary>
    TimeSpan ChargeProduce(string principal, long bytes);

    /// <summary>
    /// Takes one of the principal's long-poll slots for a fetch that waits, until disposed; null when the principal
    /// has its limit of waits open (across both protocols).
    /// </summary>
    IDisposable? EnterWait(string principal);
}

/// <summary>A long-poll slot that holds nothing (no limit on waits).</summary>
public sealed class NoWaitSlot : IDisposable
{
    public static readonly NoWaitSlot Instance = new();

    public void Dispose()
    {
    }
}

/// <summary>No security: no SASL, everything allowed (a host that configures none).</summary>
public sealed class OpenKafkaSecurity : IKafkaSecurity
{
    public static readonly OpenKafkaSecurity Instance = new();

    public bool SaslRequired => false;

    public bool SaslOffered => false;

    public string AnonymousPrincipal => "anonymous";

    public Task<KafkaAuthentication> AuthenticateAsync(string credential) => Task.FromResult(new KafkaAuthentication(null, "SASL is not offered."));

    public bool IsAllowed(string principal, KafkaResource kind, string name, KafkaOperation operation) => true;

    public TimeSpan ChargeProduce(string principal, long bytes) => TimeSpan.Zero;

    public IDisposable? EnterWait(string principal) => NoWaitSlot.Instance;
}
