using System.Net;
using System.Text;
using System.Text.Json;

namespace Gateway.Chaos;

/// <summary>
/// One consumer-group member (static id, so a join after a restart takes its own place): long-poll fetch, then commit
/// the next offset of every partition it fetched, with the generation of the fetch. 404 <c>unknown_member</c> and 409
/// <c>stale_generation</c>/<c>partition_not_assigned</c> make it join again. It checks as it goes that fetches never
/// skip an offset, that an offset never shows two different records, and that no acknowledged commit goes backwards.
/// </summary>
internal sealed class GroupConsumer(HttpClient client, ServerGate gate, string topic, string group, int partitions)
{
    public const long NotSeen = long.MinValue;
    private const string MemberId = "chaos-consumer";
    private readonly long[] _expected = new long[partitions];
    private readonly long[] _maxCommitted = Enumerable.Repeat(-1L, partitions).ToArray();
    private readonly Lock _lock = new();
    private long _generation = -1;

    /// <summary>The record id seen at each offset (index = offset): <see cref="NotSeen"/> where none was, -1 for a value no producer wrote.</summary>
    public List<long>[] Seen { get; } = [.. Enumerable.Range(0, partitions).Select(_ => new List<long>())];

    /// <summary>Acknowledged commits per partition, in the order they were answered.</summary>
    public List<long>[] Commits { get; } = [.. Enumerable.Range(0, partitions).Select(_ => new List<long>())];

    /// <summary>Every time a committed offset was found lower than one acknowledged before.</summary>
    public AnomalyList Backwards { get; } = new();

    /// <summary>Every time an offset was fetched with another record than before, or a fetch skipped offsets.</summary>
    public AnomalyList Anomalies { get; } = new();

    public long Fetches { get; private set; }

    public long RecordsFetched { get; private set; }

    public long CommitsUnanswered { get; private set; }

    public long Joins { get; private set; }

    public long DescribeChecks { get; private set; }

    public Dictionary<string, int> Errors { get; } = new(StringComparer.Ordinal);

    public long CommitsAcknowledged => Commits.Sum(c => (long)c.Count);

    public async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await gate.WaitOpenAsync(stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            using var inFlight = gate.Enter();
            if (_generation < 0)
            {
                await JoinAsync();
                continue;
            }
            var fetched = await FetchAsync();
            if (fetched.Count > 0)
            {
                await CommitAsync(fetched);
            }
        }
    }

    /// <summary>
    /// Reads the group's committed offsets back (GET /v1/groups/{g}) while the consumer is paused and checks that none
    /// is lower than the highest commit acknowledged so far: commits acknowledged before a kill must survive it.
    /// </summary>
    public async Task VerifyCommittedAsync(HttpClient control, string when)
    {
        using var response = await control.GetAsync(new Uri($"/v1/groups/{group}", UriKind.Relative));
        if (response.StatusCode == HttpStatusCode.NotFound && _maxCommitted.All(c => c < 0))
        {
            return;
        }
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new ChaosFailure($"GET /v1/groups/{group} {when}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        using var json = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync());
        var committed = new long?[partitions];
        foreach (var o in json.RootElement.GetProperty("offsets").EnumerateArray())
        {
            if (o.GetProperty("topic").GetString() == topic && o.GetProperty("committedOffset") is { ValueKind: JsonValueKind.Number } c)
            {
                committed[o.GetProperty("partition").GetInt32()] = c.GetInt64();
            }
        }
        lock (_lock)
        {
            DescribeChecks++;
            for (int p = 0; p < partitions; p++)
            {
                if (_maxCommitted[p] >= 0 && (committed[p] is not long now || now < _maxCommitted[p]))
                {
                    Backwards.Add($"partition {p}: {when} the group's committed offset is {committed[p]?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, but {_maxCommitted[p]} was acknowledged before");
                }
            }
        }
    }

    private async Task JoinAsync()
    {
        string body = $$"""{"topics":["{{topic}}"],"memberId":"{{MemberId}}","sessionTimeoutMs":30000,"autoOffsetReset":"earliest"}""";
        var (status, json) = await SendAsync(HttpMethod.Post, $"/v1/groups/{group}/members", body);
        using (json)
        {
            if (status == HttpStatusCode.Created && json is not null)
            {
                _generation = json.RootElement.GetProperty("generation").GetInt64();
                Joins++;
            }
        }
        if (status != HttpStatusCode.Created)
        {
            await Task.Delay(100);
        }
    }

    /// <summary>One long-poll fetch; returns the next offset of every partition it returned records of.</summary>
    private async Task<Dictionary<int, long>> FetchAsync()
    {
        var next = new Dictionary<int, long>();
        var (status, json) = await SendAsync(HttpMethod.Get, $"/v1/groups/{group}/members/{MemberId}/records?waitMs=500&limit=5000&maxBytes=4000000", null);
        using (json)
        {
            if (status != HttpStatusCode.OK || json is null)
            {
                RejoinIfFenced(status);
                return next;
            }
            Fetches++;
            _generation = json.RootElement.GetProperty("generation").GetInt64();
            foreach (var record in json.RootElement.GetProperty("records").EnumerateArray())
            {
                int p = record.GetProperty("partition").GetInt32();
                long offset = record.GetProperty("offset").GetInt64();
                long id = record.GetProperty("value") is { ValueKind: JsonValueKind.String } v && RecordId.TryParse(v.GetString(), out long parsed) ? parsed : -1;
                Observe(p, offset, id);
                next[p] = offset + 1;
                RecordsFetched++;
            }
        }
        return next;
    }

    private void Observe(int p, long offset, long id)
    {
        // After a restart or a new join the session starts again at the committed offset: going back is allowed
        // (at least once), going forward past an offset not yet seen in this session is a skip.
        if (offset > _expected[p])
        {
            Anomalies.Add($"partition {p}: fetch skipped from offset {_expected[p]} to {offset}");
        }
        _expected[p] = offset + 1;
        var seen = Seen[p];
        while (seen.Count <= offset)
        {
            seen.Add(NotSeen);
        }
        if (seen[(int)offset] != NotSeen && seen[(int)offset] != id)
        {
            Anomalies.Add($"partition {p}: offset {offset} was fetched as {seen[(int)offset]:x} and later as {id:x}");
        }
        seen[(int)offset] = id;
    }

    private async Task CommitAsync(Dictionary<int, long> next)
    {
        var body = new StringBuilder($$"""{"generation":{{_generation}},"offsets":[""");
        body.AppendJoin(',', next.Select(n => $$"""{"topic":"{{topic}}","partition":{{n.Key}},"offset":{{n.Value}}}"""));
        body.Append("]}");
        var (status, json) = await SendAsync(HttpMethod.Post, $"/v1/groups/{group}/members/{MemberId}/offsets", body.ToString());
        using (json)
        {
            if (status is null)
            {
                CommitsUnanswered++;
                return;
            }
            if (status != HttpStatusCode.OK || json is null)
            {
                RejoinIfFenced(status);
                return;
            }
            lock (_lock)
            {
                foreach (var o in json.RootElement.GetProperty("offsets").EnumerateArray())
                {
                    int p = o.GetProperty("partition").GetInt32();
                    long offset = o.GetProperty("offset").GetInt64();
                    if (offset < _maxCommitted[p])
                    {
                        Backwards.Add($"partition {p}: a commit was answered with offset {offset}, but {_maxCommitted[p]} was acknowledged before");
                    }
                    _maxCommitted[p] = Math.Max(_maxCommitted[p], offset);
                    Commits[p].Add(offset);
                }
            }
        }
    }

    private void RejoinIfFenced(HttpStatusCode? status)
    {
        if (status is HttpStatusCode.NotFound or HttpStatusCode.Conflict)
        {
            _generation = -1;
        }
    }

    /// <summary>Status (null: no answer) and the JSON body of a 2xx answer; other answers are counted by status and code.</summary>
    private async Task<(HttpStatusCode? Status, JsonDocument? Json)> SendAsync(HttpMethod method, string path, string? body)
    {
        try
        {
            using var request = new HttpRequestMessage(method, path);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }
            using var response = await client.SendAsync(request);
            byte[] answer = await response.Content.ReadAsByteArrayAsync();
            if (!response.IsSuccessStatusCode)
            {
                string error = $"{method} {(int)response.StatusCode} {ProblemJson.Code(answer)}";
                Errors[error] = Errors.GetValueOrDefault(error) + 1;
                return (response.StatusCode, null);
            }
            try
            {
                return (response.StatusCode, JsonDocument.Parse(answer));
            }
            catch (JsonException)
            {
                string error = $"{method} {(int)response.StatusCode} with a body that is not JSON";
                Errors[error] = Errors.GetValueOrDefault(error) + 1;
                return (response.StatusCode, null);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
        {
            return (null, null);
        }
    }
}
