using System.Net;
using System.Text;
using System.Text.Json;

namespace Gateway.Chaos;

/// <summary>
/// The workload over the gateway's HTTP API: produce with <c>acks</c> and <c>Idempotency-Key</c>, a group member with
/// join, long-poll fetch and commit, and the observer's reads (GET /v1/groups/{g}, partition fetch).
/// </summary>
internal sealed class HttpWorkloadClient : IWorkloadClient
{
    private readonly Workload _workload;
    private readonly SocketsHttpHandler _handler = new() { MaxConnectionsPerServer = 4096, ConnectTimeout = TimeSpan.FromSeconds(5) };
    private readonly HttpClient _client;
    private readonly HttpClient _observer;
    private readonly string _producePath;

    public HttpWorkloadClient(Uri address, Workload workload)
    {
        _workload = workload;
        _client = new HttpClient(_handler, disposeHandler: false) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        _observer = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(120) };
        _producePath = $"/v1/topics/{workload.Topic}/records?acks={workload.Acks}";
    }

    public async Task CreateTopicAsync()
    {
        string body = $$"""{"name":"{{_workload.Topic}}","partitions":{{_workload.Partitions}}}""";
        using var response = await _observer.PostAsync(new Uri("/v1/topics", UriKind.Relative), Json(body));
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new ChaosFailure($"creating the topic: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    public async Task<ProduceAnswer> ProduceAsync(IReadOnlyList<(string? Key, string Value)> records, string? idempotencyKey)
    {
        var body = new StringBuilder("{\"records\":[");
        for (int i = 0; i < records.Count; i++)
        {
            body.Append(i == 0 ? "{" : ",{");
            if (records[i].Key is { } key)
            {
                body.Append("\"key\":\"").Append(key).Append("\",");
            }
            body.Append("\"value\":\"").Append(records[i].Value).Append("\"}");
        }
        body.Append("]}");
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _producePath) { Content = Json(body.ToString()) };
            if (idempotencyKey is not null)
            {
                request.Headers.Add("Idempotency-Key", idempotencyKey);
            }
            using var response = await _client.SendAsync(request);
            byte[] answer = await response.Content.ReadAsByteArrayAsync();
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return new ProduceAnswer(Classify(response.StatusCode, produce: true), Label(response.StatusCode, answer), [], false);
            }
            var offsets = new List<(int, long)>();
            try
            {
                using var json = JsonDocument.Parse(answer);
                foreach (var o in json.RootElement.GetProperty("offsets").EnumerateArray())
                {
                    offsets.Add((o.GetProperty("partition").GetInt32(), o.GetProperty("offset").GetInt64()));
                }
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                offsets.Clear(); // counted as a malformed answer by the producer
            }
            bool replayed = response.Headers.TryGetValues("Idempotency-Replayed", out var values) && values.Contains("true", StringComparer.OrdinalIgnoreCase);
            return new ProduceAnswer(AnswerKind.Ok, "200", offsets, replayed);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException or System.Net.Sockets.SocketException)
        {
            return new ProduceAnswer(AnswerKind.NoAnswer, "no answer", [], false);
        }
    }

    public async Task<GroupAnswer<long>> JoinAsync(string member)
    {
        string body = $$"""{"topics":["{{_workload.Topic}}"],"memberId":"{{member}}","sessionTimeoutMs":30000,"autoOffsetReset":"earliest"}""";
        return await SendAsync(HttpMethod.Post, $"/v1/groups/{_workload.Group}/members", body, HttpStatusCode.Created,
            json => json.GetProperty("generation").GetInt64());
    }

    public Task<GroupAnswer<FetchedRecords>> FetchAsync(string member) =>
        SendAsync(HttpMethod.Get, $"/v1/groups/{_workload.Group}/members/{member}/records?waitMs=500&limit=5000&maxBytes=4000000", null, HttpStatusCode.OK,
            json => new FetchedRecords(
                json.GetProperty("generation").GetInt64(),
                [.. json.GetProperty("records").EnumerateArray().Select(r => (
                    r.GetProperty("partition").GetInt32(),
                    r.GetProperty("offset").GetInt64(),
                    r.GetProperty("value") is { ValueKind: JsonValueKind.String } v ? v.GetString() : null))]));

    public Task<GroupAnswer<IReadOnlyList<(int Partition, long Offset)>>> CommitAsync(string member, long generation, IReadOnlyDictionary<int, long> next)
    {
        var body = new StringBuilder($$"""{"generation":{{generation}},"offsets":[""");
        body.AppendJoin(',', next.Select(n => $$"""{"topic":"{{_workload.Topic}}","partition":{{n.Key}},"offset":{{n.Value}}}"""));
        body.Append("]}");
        return SendAsync<IReadOnlyList<(int, long)>>(HttpMethod.Post, $"/v1/groups/{_workload.Group}/members/{member}/offsets", body.ToString(), HttpStatusCode.OK,
            json => [.. json.GetProperty("offsets").EnumerateArray().Select(o => (o.GetProperty("partition").GetInt32(), o.GetProperty("offset").GetInt64()))]);
    }

    public async Task<long?[]?> CommittedAsync()
    {
        using var response = await _observer.GetAsync(new Uri($"/v1/groups/{_workload.Group}", UriKind.Relative));
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new ChaosFailure($"GET /v1/groups/{_workload.Group}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        using var json = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync());
        var committed = new long?[_workload.Partitions];
        foreach (var o in json.RootElement.GetProperty("offsets").EnumerateArray())
        {
            if (o.GetProperty("topic").GetString() == _workload.Topic && o.GetProperty("committedOffset") is { ValueKind: JsonValueKind.Number } c)
            {
                committed[o.GetProperty("partition").GetInt32()] = c.GetInt64();
            }
        }
        return committed;
    }

    public async Task<PartitionPage> ReadAsync(int partition, long offset)
    {
        using var response = await _observer.GetAsync(new Uri($"/v1/topics/{_workload.Topic}/partitions/{partition}/records?offset={offset}&limit=10000&maxBytes=16000000", UriKind.Relative));
        byte[] body = await response.Content.ReadAsByteArrayAsync();
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // Below the begin offset: an empty page that says where the partition begins.
            using var range = JsonDocument.Parse(body);
            long begin = range.RootElement.GetProperty("beginOffset").GetInt64();
            return new PartitionPage(begin, range.RootElement.GetProperty("endOffset").GetInt64(), begin, []);
        }
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new ChaosFailure($"reading {_workload.Topic}/{partition} at offset {offset}: {(int)response.StatusCode} {ProblemJson.Code(body)}");
        }
        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        return new PartitionPage(
            root.GetProperty("beginOffset").GetInt64(),
            root.GetProperty("endOffset").GetInt64(),
            root.GetProperty("nextOffset").GetInt64(),
            [.. root.GetProperty("records").EnumerateArray().Select(r => (
                r.GetProperty("offset").GetInt64(),
                r.GetProperty("value") is { ValueKind: JsonValueKind.String } v ? v.GetString() : null))]);
    }

    public void Dispose()
    {
        _client.Dispose();
        _observer.Dispose();
        _handler.Dispose();
    }

    /// <summary>A group request: the parsed 2xx body, or the kind of failure (404 and 409 fence the member).</summary>
    private async Task<GroupAnswer<T>> SendAsync<T>(HttpMethod method, string path, string? body, HttpStatusCode success, Func<JsonElement, T> parse)
    {
        try
        {
            using var request = new HttpRequestMessage(method, path);
            if (body is not null)
            {
                request.Content = Json(body);
            }
            using var response = await _client.SendAsync(request);
            byte[] answer = await response.Content.ReadAsByteArrayAsync();
            if (response.StatusCode != success)
            {
                return new GroupAnswer<T>(Classify(response.StatusCode, produce: false), $"{method} {Label(response.StatusCode, answer)}", default);
            }
            try
            {
                using var json = JsonDocument.Parse(answer);
                return new GroupAnswer<T>(AnswerKind.Ok, $"{(int)success}", parse(json.RootElement));
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                return new GroupAnswer<T>(AnswerKind.Rejected, $"{method} {(int)response.StatusCode} with a body that does not parse", default);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException or System.Net.Sockets.SocketException)
        {
            return new GroupAnswer<T>(AnswerKind.NoAnswer, "no answer", default);
        }
    }

    private static AnswerKind Classify(HttpStatusCode status, bool produce) => status switch
    {
        >= HttpStatusCode.InternalServerError => AnswerKind.ServerError,
        HttpStatusCode.TooManyRequests => AnswerKind.Busy,
        HttpStatusCode.Conflict when produce => AnswerKind.Busy,
        HttpStatusCode.NotFound or HttpStatusCode.Conflict => AnswerKind.Fenced,
        _ => AnswerKind.Rejected,
    };

    private static string Label(HttpStatusCode status, byte[] answer) => $"{(int)status} {ProblemJson.Code(answer)}";

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
