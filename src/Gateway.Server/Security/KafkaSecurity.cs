using Gateway.KafkaProtocol;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Security;

/// <summary>
/// The Kafka listener's security, the same as HTTP's: SASL with the same credentials (an API key or a JWT as PLAIN's
/// password; a JWT by OAUTHBEARER), required whenever HTTP requires credentials; the same <c>Auth:Rules</c> per topic
/// and group (Kafka's requests mapped to HTTP's operations); the same produce quotas per principal, shared across both
/// protocols (a Kafka produce over quota is answered late, not refused).
/// </summary>
public sealed class KafkaSecurity(Authenticator authenticator, AccessControl access, Quotas quotas, IOptions<AuthOptions> auth) : IKafkaSecurity
{
    private static readonly string[] Produce = [Operations.Produce];
    private static readonly string[] Fetch = [Operations.Fetch];
    private static readonly string[] Admin = [Operations.Admin];
    private static readonly string[] Consume = [Operations.Consume];

    public bool SaslRequired => access.CredentialsRequired;

    public bool SaslOffered => auth.Value.CredentialsConfigured;

    public string AnonymousPrincipal => AccessControl.Anonymous;

    public async Task<KafkaAuthentication> AuthenticateAsync(string credential)
    {
        var (user, failure) = await authenticator.AuthenticateCredentialAsync(credential);
        return user?.Identity?.Name is { Length: > 0 } name ? new KafkaAuthentication(name, null) : new KafkaAuthentication(null, failure);
    }

    public bool IsAllowed(string principal, KafkaResource kind, string name, KafkaOperation operation)
    {
        var resource = kind == KafkaResource.Topic ? ResourceKind.Topic : ResourceKind.Group;
        string[] anyOf = operation switch
        {
            KafkaOperation.Produce => Produce,
            KafkaOperation.Fetch => Fetch,
            KafkaOperation.Admin => Admin,
            KafkaOperation.Consume => Consume,
            _ => kind == KafkaResource.Topic ? Operations.AnyOnTopic : Operations.AnyOnGroup,
        };
        return access.IsAllowed(principal, resource, name, anyOf);
    }

    public TimeSpan ChargeProduce(string principal, long bytes) => quotas.LimitsProduce ? quotas.ChargeProduceDelay(principal, bytes) : TimeSpan.Zero;

    public IDisposable? EnterWait(string principal) =>
        !quotas.LimitsWaits ? NoWaitSlot.Instance : quotas.TryEnterWait(principal, out var slot) ? slot : null;
}
