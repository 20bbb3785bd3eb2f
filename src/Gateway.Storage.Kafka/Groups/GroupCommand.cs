using System.Text.Json.Serialization;
using Gateway.Groups;

namespace Gateway.Storage.Kafka.Groups;

/// <summary>
/// One change to the HTTP consumer groups, as a record of the groups log. Every node applies every command in the log's
/// order; the node that wrote it answers its client with what applying it gave.
/// </summary>
internal sealed class GroupCommand
{
    /// <summary>The writing node and its sequence number: how the writer knows its own command when it reads it back.</summary>
    public string Id { get; set; } = "";

    /// <summary>join, heartbeat, leave, fetch, advance, commit, reset, delete, tick, topicChanged, topicDeleted; claim, done, release (Idempotency-Key).</summary>
    public string Op { get; set; } = "";

    public string Group { get; set; } = "";

    /// <summary>When the writer made it, by its clock: the replicas' time while applying it (never earlier than the command before).</summary>
    public DateTimeOffset? At { get; set; }

    public string? Member { get; set; }

    public string? Owner { get; set; }

    public List<string>? Topics { get; set; }

    public int? SessionTimeoutMs { get; set; }

    public OffsetReset Reset { get; set; }

    public long Generation { get; set; }

    public long ResetVersion { get; set; }

    /// <summary>Offsets to commit, reset or advance; null in a commit means everything fetched so far.</summary>
    public List<PartitionOffset>? Offsets { get; set; }

    /// <summary>The topic of an Idempotency-Key claim (claim, done, release).</summary>
    public string? Topic { get; set; }

    /// <summary>The key's producer id (a hash of topic, principal and key).</summary>
    public long ProducerId { get; set; }

    /// <summary>A hash of the request's content: another request under the same key is refused.</summary>
    public long RequestHash { get; set; }

    /// <summary>The claim a done or release is for (the claim command's id).</summary>
    public string? Claim { get; set; }

    /// <summary>How long the claim (claim) or the key (done) lasts, by the log's clock.</summary>
    public long LifetimeMs { get; set; }

    /// <summary>Where a done attempt's records went: each record's offset, by partition.</summary>
    public Dictionary<int, List<long>>? Appended { get; set; }

    /// <summary>Partition counts of the topics concerned as the writer saw them: every replica assigns with the same counts.</summary>
    public Dictionary<string, int>? Counts { get; set; }
}

/// <summary>The groups' whole state as of a position of the groups log, so that a starting node need not read the log from its start.</summary>
internal sealed class GroupSnapshot
{
    /// <summary>The next offset of the groups log to apply after this state.</summary>
    public long Through { get; set; }

    public DateTimeOffset Clock { get; set; }

    public Dictionary<string, int> Counts { get; set; } = new(StringComparer.Ordinal);

    public List<GroupState> Groups { get; set; } = [];

    public List<KeySnapshot>? Keys { get; set; }
}

/// <summary>An Idempotency-Key claim in a <see cref="GroupSnapshot"/>.</summary>
internal sealed class KeySnapshot
{
    public string Topic { get; set; } = "";

    public long ProducerId { get; set; }

    public string ClaimId { get; set; } = "";

    public long RequestHash { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    public Dictionary<int, List<long>>? Appended { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
[JsonSerializable(typeof(GroupCommand))]
[JsonSerializable(typeof(GroupSnapshot))]
internal sealed partial class GroupsJsonContext : JsonSerializerContext;
