using Gateway.KafkaProtocol.Apis;
using Gateway.KafkaProtocol.Groups;
using Gateway.KafkaProtocol.Protocol;
using Gateway.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gateway.KafkaProtocol;

/// <summary>
/// A single-node Kafka broker over the storage port: node 0, the leader of every partition and the controller. Each
/// request is answered by its API's class under <c>Apis/</c>; storage errors become Kafka's error codes per topic or
/// partition, never a dropped connection.
/// </summary>
public sealed partial class KafkaBroker(IServiceProvider services, IOptions<KafkaProtocolOptions> options, TimeProvider time, ILogger<KafkaBroker> logger)
{
    private ILogStorage? _store;
    private IKafkaSecurity? _security;

    /// <summary>This broker's node id, in metadata and as the controller.</summary>
    public const int NodeId = 0;

    /// <summary>The store, resolved at the first request: Kestrel makes the handler before the store has opened.</summary>
    public ILogStorage Store => _store ??= services.GetRequiredService<ILogStorage>();

    public KafkaProtocolOptions Options => options.Value;

    /// <summary>SASL, authorization and quotas, as the host configures them (none: everything allowed).</summary>
    public IKafkaSecurity Security => _security ??= services.GetService<IKafkaSecurity>() ?? OpenKafkaSecurity.Instance;

    /// <summary>The principal the request acts as: its connection's, or the anonymous one.</summary>
    internal string PrincipalOf(KafkaRequest request) => request.Client?.Principal ?? Security.AnonymousPrincipal;

    /// <summary>Throws TOPIC_ or GROUP_AUTHORIZATION_FAILED unless the request's principal may do <paramref name="operation"/> on the resource.</summary>
    internal void Demand(KafkaRequest request, KafkaResource kind, string name, KafkaOperation operation)
    {
        if (!Allows(request, kind, name, operation))
        {
            throw new KafkaErrorException(
                kind == KafkaResource.Topic ? ErrorCode.TopicAuthorizationFailed : ErrorCode.GroupAuthorizationFailed,
                $"'{PrincipalOf(request)}' may not {operation.ToString().ToLowerInvariant()} {kind.ToString().ToLowerInvariant()} '{name}'.");
        }
    }

    /// <summary>Whether the request's principal may do <paramref name="operation"/> on the resource.</summary>
    internal bool Allows(KafkaRequest request, KafkaResource kind, string name, KafkaOperation operation) =>
        Security.IsAllowed(PrincipalOf(request), kind, name, operation);

    /// <summary>The Kafka clients' groups (membership in memory).</summary>
    public KafkaGroupCoordinator Groups => services.GetRequiredService<KafkaGroupCoordinator>();

    /// <summary>Where committed offsets live, shared with HTTP groups.</summary>
    public IGroupCoordinator GroupStore => services.GetRequiredService<IGroupCoordinator>();

    /// <summary>How many HTTP members hold the group now (0 when it does not exist).</summary>
    public async Task<int> HttpMembersAsync(string group)
    {
        try
        {
            return (await GroupStore.DescribeAsync(group)).Members.Count;
        }
        catch (GroupNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>The groups the store keeps (with committed offsets or HTTP members).</summary>
    public async Task<IEnumerable<string>> StoredGroupsAsync() => (await GroupStore.ListAsync()).Select(g => g.Name);

    /// <summary>What follows a topic's deletion or growth (groups, metrics), as over HTTP.</summary>
    public ITopicEvents TopicEvents => services.GetRequiredService<ITopicEvents>();

    public TimeProvider Time => time;

    /// <summary>Answers one request; null when the request wants no answer (Produce with acks=0). Disposes the request.</summary>
    public async Task<ResponseBuffer?> HandleAsync(KafkaRequest request, KafkaClientInfo client, CancellationToken cancel)
    {
        using (request)
        {
            request.Client = client;
            var response = new ResponseBuffer(request.CorrelationId, flexibleHeader: false);
            try
            {
                var writer = new KafkaWriter(response);
                bool answer = (ApiKey)request.Key switch
                {
                    ApiKey.ApiVersions => ApiVersionsApi.Handle(request, writer),
                    ApiKey.SaslHandshake => SaslApis.Handshake(request, writer, this, client),
                    ApiKey.SaslAuthenticate => await SaslApis.AuthenticateAsync(request, writer, this, client),
                    ApiKey.Metadata => MetadataApi.Handle(request, writer, this, client),
                    ApiKey.Produce => await ProduceApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.Fetch => await FetchApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.ListOffsets => await ListOffsetsApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.CreateTopics => await CreateTopicsApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.DeleteTopics => await DeleteTopicsApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.CreatePartitions => await CreatePartitionsApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.DeleteRecords => await DeleteRecordsApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.InitProducerId => await InitProducerIdApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.DescribeConfigs => DescribeConfigsApi.Handle(request, writer, this),
                    ApiKey.AlterConfigs or ApiKey.IncrementalAlterConfigs => await AlterConfigsApi.HandleAsync(request, writer, this, cancel),
                    ApiKey.FindCoordinator => GroupApis.FindCoordinator(request, writer, this, client),
                    ApiKey.JoinGroup => await GroupApis.JoinGroupAsync(request, writer, this, client),
                    ApiKey.SyncGroup => await GroupApis.SyncGroupAsync(request, writer, this),
                    ApiKey.Heartbeat => GroupApis.Heartbeat(request, writer, this),
                    ApiKey.LeaveGroup => GroupApis.LeaveGroup(request, writer, this),
                    ApiKey.ListGroups => await GroupApis.ListGroupsAsync(request, writer, this),
                    ApiKey.DescribeGroups => GroupApis.DescribeGroups(request, writer, this),
                    ApiKey.DeleteGroups => await GroupApis.DeleteGroupsAsync(request, writer, this),
                    ApiKey.OffsetCommit => await OffsetApis.CommitAsync(request, writer, this),
                    ApiKey.OffsetFetch => await OffsetApis.FetchAsync(request, writer, this),
                    _ => throw new MalformedRequestException($"API {request.Key} is not served here."),
                };
                if (answer)
                {
                    response.CloseConnectionAfter = request.CloseAfterAnswer;
                    return response;
                }
                response.Dispose();
                return null;
            }
            catch
            {
                response.Dispose();
                throw;
            }
        }
    }

    /// <summary>The code for an error of one topic or partition; an unexpected one is logged.</summary>
    internal short ErrorOf(Exception ex, string topic, int partition)
    {
        short code = ErrorCode.Of(ex);
        if (code == ErrorCode.UnknownServerError)
        {
            LogUnexpected(logger, topic, partition, ex);
        }
        return code;
    }

    [LoggerMessage(EventId = 701, Level = LogLevel.Error, Message = "Kafka request on {Topic}/{Partition} failed")]
    private static partial void LogUnexpected(ILogger logger, string topic, int partition, Exception exception);
}
