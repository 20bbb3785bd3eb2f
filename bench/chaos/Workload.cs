using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gateway.Chaos;

/// <summary>
/// What a run drives, apart from the protocol that carries it: one topic, producers (half of them idempotent: they
/// retry an unanswered request so that it lands once), one consumer-group member that fetches and commits. The
/// harness and its checker see only this and <see cref="IWorkloadClient"/>; <see cref="Protocol"/> picks the client
/// (<c>http</c>: the gateway's HTTP API; the Kafka listener's <c>acks=all</c> path plugs in as another client).
/// </summary>
internal sealed record Workload
{
    public string Protocol { get; init; } = "http";

    public string Topic { get; init; } = "chaos";

    public int Partitions { get; init; } = 4;

    public int Producers { get; init; } = 16;

    /// <summary>The largest multi-record request; half of the requests carry 1 record.</summary>
    public int MaxRecords { get; init; } = 20;

    /// <summary><c>disk</c> (durable before the answer), or <c>memory</c>: a self-test of the checker, which must then find losses.</summary>
    public string Acks { get; init; } = "disk";

    public string Group { get; init; } = "chaos-group";

    public static readonly string[] Protocols = ["http"];

    /// <summary>A workload from a JSON file (the properties above, camelCase); what it leaves out keeps its default.</summary>
    public static Workload Load(string path)
    {
        var workload = JsonSerializer.Deserialize<Workload>(File.ReadAllText(path), s_json) ?? throw new ArgumentException($"--workload: '{path}' holds no workload");
        return workload.Validated();
    }

    public Workload Validated()
    {
        if (!Protocols.Contains(Protocol))
        {
            throw new ArgumentException($"the workload's protocol is one of {string.Join(", ", Protocols)} (got '{Protocol}')");
        }
        if (Acks is not ("disk" or "memory"))
        {
            throw new ArgumentException("the workload's acks is disk or memory");
        }
        if (Partitions is < 1 or > 64 || Producers is < 2 or > 1024 || MaxRecords is < 2 or > 1000)
        {
            throw new ArgumentException("the workload needs 1..64 partitions, 2..1024 producers and a maxRecords of 2..1000");
        }
        return this;
    }

    /// <summary>The client that carries this workload to a server at <paramref name="address"/>.</summary>
    public IWorkloadClient Connect(Uri address) => Protocol switch
    {
        "http" => new HttpWorkloadClient(address, this),
        _ => throw new ArgumentException($"no client for protocol '{Protocol}'"),
    };

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow };
}

/// <summary>
/// The operations a workload needs from a server, in the protocol's terms mapped to the harness's: every answer says
/// whether the server acted (and what it said), may have acted (no answer, a server error), or refused.
/// </summary>
internal interface IWorkloadClient : IDisposable
{
    /// <summary>Creates the workload's topic; throws <see cref="ChaosFailure"/> when the server refuses.</summary>
    Task CreateTopicAsync();

    /// <summary>One produce request of <paramref name="records"/> (key, value), with an idempotency key when given.</summary>
    Task<ProduceAnswer> ProduceAsync(IReadOnlyList<(string? Key, string Value)> records, string? idempotencyKey);

    /// <summary>Joins the group as <paramref name="member"/>: the generation, or a failed answer.</summary>
    Task<GroupAnswer<long>> JoinAsync(string member);

    /// <summary>One long-poll fetch of the member: the generation and the records (partition, offset, value).</summary>
    Task<GroupAnswer<FetchedRecords>> FetchAsync(string member);

    /// <summary>Commits the next offset of each partition with the generation: the offsets the server acknowledged.</summary>
    Task<GroupAnswer<IReadOnlyList<(int Partition, long Offset)>>> CommitAsync(string member, long generation, IReadOnlyDictionary<int, long> next);

    /// <summary>The group's committed offset per partition, read by an observer (null: none; the whole array null: no group).</summary>
    Task<long?[]?> CommittedAsync();

    /// <summary>One page of a partition's records from <paramref name="offset"/>, read by an observer.</summary>
    Task<PartitionPage> ReadAsync(int partition, long offset);
}

internal enum AnswerKind
{
    /// <summary>Done: the answer says what the server did.</summary>
    Ok,

    /// <summary>No answer came (connection reset, refused, timed out): the server may or may not have acted.</summary>
    NoAnswer,

    /// <summary>A server error (HTTP 5xx): it may have acted.</summary>
    ServerError,

    /// <summary>Refused for now, nothing done (HTTP 409 while an idempotency key is in flight, 429): try again.</summary>
    Busy,

    /// <summary>Refused, nothing done, and the same request would be refused again (HTTP 4xx).</summary>
    Rejected,

    /// <summary>A group answer: the member is unknown or its generation is stale; it must join again.</summary>
    Fenced,
}

/// <summary>A produce answer: on <see cref="AnswerKind.Ok"/> the partition and offset of each record, and whether it was a replay.</summary>
internal sealed record ProduceAnswer(AnswerKind Kind, string Label, IReadOnlyList<(int Partition, long Offset)> Offsets, bool Replayed);

/// <summary>A group answer; <see cref="Label"/> names a failure for the report ("404 unknown_member", "no answer").</summary>
internal sealed record GroupAnswer<T>(AnswerKind Kind, string Label, T? Value);

internal sealed record FetchedRecords(long Generation, IReadOnlyList<(int Partition, long Offset, string? Value)> Records);

/// <summary>A page of a partition: its begin and end offsets, the records, and where the next page starts.</summary>
internal sealed record PartitionPage(long BeginOffset, long EndOffset, long NextOffset, IReadOnlyList<(long Offset, string? Value)> Records);
