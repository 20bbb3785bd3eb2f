using System.Text.Json;

namespace Gateway.Server.Records;

/// <summary>Where one produced record landed.</summary>
public sealed record RecordPosition(int Partition, long Offset);

/// <summary>The answer to a produce: one position per record, in request order.</summary>
public sealed record ProduceResponse(IReadOnlyList<RecordPosition> Offsets);

/// <summary>
/// A record to produce. Give at most one of <c>key</c>/<c>keyBase64</c> and of <c>value</c>/<c>valueBase64</c>.
/// A JSON string is stored as UTF-8 text and comes back as a string; any other JSON value is stored as its JSON
/// text and comes back as JSON; base64 is stored as the decoded bytes and comes back as base64.
/// A null or absent value is a tombstone.
/// </summary>
public sealed record ProduceRecord(
    JsonElement? Key,
    string? KeyBase64,
    JsonElement? Value,
    string? ValueBase64,
    IReadOnlyDictionary<string, string?>? Headers,
    int? Partition,
    long? Timestamp);

/// <summary>A produce request in <c>application/json</c>.</summary>
public sealed record ProduceRequest(IReadOnlyList<ProduceRecord> Records);

/// <summary>
/// A stored record. Key and value come back the way they were produced: JSON as JSON (<c>key</c>/<c>value</c>),
/// text as a JSON string, bytes as base64 (<c>keyBase64</c>/<c>valueBase64</c>). A null key is left out; a
/// null value (tombstone) is <c>"value": null</c>. Headers are left out when there are none.
/// </summary>
public sealed record FetchedRecord(
    string Topic,
    int Partition,
    long Offset,
    long Timestamp,
    JsonElement? Key,
    string? KeyBase64,
    JsonElement? Value,
    string? ValueBase64,
    IReadOnlyDictionary<string, string?>? Headers);

/// <summary>The answer to a fetch: the records, the offset to ask for next, and the partition's range.</summary>
public sealed record FetchResponse(IReadOnlyList<FetchedRecord> Records, long NextOffset, long BeginOffset, long EndOffset);
