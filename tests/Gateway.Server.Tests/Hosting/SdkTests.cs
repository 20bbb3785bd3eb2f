using Gateway.Client;
using Gateway.Client.Models;
using Microsoft.Kiota.Abstractions.Authentication;
using Microsoft.Kiota.Abstractions.Serialization;
using Microsoft.Kiota.Http.HttpClientLibrary;

namespace Gateway.Server.Tests.Hosting;

/// <summary>The C# SDK Kiota generates from api-specs/openapi.json, used against the real server process.</summary>
public sealed class SdkTests : IAsyncLifetime
{
    private readonly TempDirectory _dataDirectory = new("gateway-sdk-tests", create: false);
    private ServerProcess _server = null!;
    private GatewayClient _client = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerProcess.StartAsync(_dataDirectory.Path);
        var adapter = new HttpClientRequestAdapter(new AnonymousAuthenticationProvider(), httpClient: _server.Client)
        {
            BaseUrl = _server.Address.ToString().TrimEnd('/'),
        };
        _client = new GatewayClient(adapter);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dataDirectory.Dispose();
    }

    [Fact]
    public async Task The_generated_client_creates_produces_fetches_joins_and_commits()
    {
        var created = await _client.V1.Topics.PostAsync(new CreateTopicRequest { Name = "sdk", Partitions = 2 });
        Assert.Equal(2, created!.Partitions!.Count);

        var produced = await _client.V1.Topics["sdk"].Records.PostAsync(new ProduceRequest
        {
            Records =
            [
                new ProduceRecord { Key = new UntypedString("user-1"), Value = new UntypedString("signup"), Partition = 0 },
                new ProduceRecord { Key = new UntypedString("user-1"), Value = new UntypedObject(new Dictionary<string, UntypedNode> { ["n"] = new UntypedInteger(2) }), Partition = 0 },
            ],
        });
        Assert.Equal([0L, 1L], produced!.Offsets!.Select(o => o.Offset ?? -1));

        var fetched = await _client.V1.Topics["sdk"].Partitions[0].Records.GetAsync(r => r.QueryParameters.Offset = 0);
        Assert.Equal(2, fetched!.Records!.Count);
        Assert.Equal("signup", (fetched.Records[0].Value as UntypedString)?.GetValue());
        Assert.Equal(2L, fetched.NextOffset);

        var member = await _client.V1.Groups["sdk-readers"].Members.PostAsync(new JoinRequest { Topics = ["sdk"], AutoOffsetReset = OffsetReset.Earliest });
        Assert.Equal(2, member!.Assignments!.Count);
        var batch = await _client.V1.Groups["sdk-readers"].Members[member.MemberId!].Records.GetAsync(r => r.QueryParameters.WaitMs = 5000);
        Assert.Equal(2, batch!.Records!.Count);

        var committed = await _client.V1.Groups["sdk-readers"].Members[member.MemberId!].Offsets.PostAsync(new CommitRequest
        {
            Generation = batch.Generation,
            Offsets = [new PartitionOffset { Topic = "sdk", Partition = 0, Offset = 2 }],
        });
        Assert.Equal(2L, committed!.Offsets!.Single().Offset);
        var group = await _client.V1.Groups["sdk-readers"].GetAsync();
        var partition0 = group!.Offsets!.Single(o => o.Partition == 0);
        Assert.Equal(2L, partition0.CommittedOffset);
        Assert.Equal(0L, partition0.Lag);

        // Errors arrive as the typed problem, with its stable code.
        var problem = await Assert.ThrowsAsync<ProblemDetails>(() => _client.V1.Topics["absent"].GetAsync());
        Assert.Equal("topic_not_found", problem.Code);
        Assert.Equal(404, problem.ResponseStatusCode);
    }
}
