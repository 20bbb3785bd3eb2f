using System.Net;
using System.Text;
using System.Text.Json;

namespace Gateway.Chaos;

/// <summary>
/// One producer: a request at a time with <c>acks=disk</c>, 1 record or 2..max records, keyless or keyed. An
/// idempotent producer sends a fresh <c>Idempotency-Key</c> per request and retries a request left unanswered with the
/// same key and body once the server is back; a plain one never retries: its unanswered records are indeterminate.
/// </summary>
internal sealed class Producer(int id, bool idempotent, HttpClient client, ServerGate gate, string topic, string acks, int maxRecords, int seed)
{
    private readonly Random _random = new(seed);
    private readonly string _path = $"/v1/topics/{topic}/records?acks={acks}";
    private long _ackedRecords;

    public int Id => id;

    public bool Idempotent => idempotent;

    /// <summary>Sequences 0..SentRecords-1 were put in a request (sent at least once).</summary>
    public long SentRecords { get; private set; }

    public long AckedRecords => Interlocked.Read(ref _ackedRecords);

    /// <summary>Acknowledged records, with the partition and offset the answer gave.</summary>
    public List<Ack> Acked { get; } = [];

    /// <summary>Records of plain requests that got no answer (or a 5xx): they may or may not be in the log.</summary>
    public List<long> Indeterminate { get; } = [];

    /// <summary>Records of requests answered with a 4xx: never appended.</summary>
    public List<long> Rejected { get; } = [];

    /// <summary>Records of idempotent requests still unanswered when the run ended (retries gave up).</summary>
    public List<long> Unresolved { get; } = [];

    public long Requests { get; private set; }

    public long Retries { get; private set; }

    public long Replays { get; private set; }

    /// <summary>Attempts that got no 200, by answer: "no answer", or status and problem code ("503 storage_unavailable").</summary>
    public Dictionary<string, int> Errors { get; } = new(StringComparer.Ordinal);

    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
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
            int count = _random.Next(2) == 0 ? 1 : _random.Next(2, maxRecords + 1);
            long first = SentRecords;
            SentRecords += count;
            Requests++;
            string body = Body(first, count, keyed: _random.Next(2) == 0);
            string? key = idempotent ? $"chaos-p{id}-r{Requests}" : null;
            try
            {
                await SendUntilSettledAsync(body, key, first, count, abort);
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                AddRange(Unresolved, first, count);
                return;
            }
        }
    }

    private async Task SendUntilSettledAsync(string body, string? key, long first, int count, CancellationToken abort)
    {
        for (int attempt = 0; ; attempt++)
        {
            if (attempt > 0)
            {
                Retries++;
                await Task.Delay(Math.Min(1000, 20 * attempt), abort);
                await gate.WaitOpenAsync(abort);
            }
            using var inFlight = gate.Enter();
            var (status, code, offsets, replayed) = await SendAsync(body, key);
            if (status == HttpStatusCode.OK)
            {
                if (offsets.Count != count)
                {
                    Count($"200 with {offsets.Count} offsets for {count} records");
                    AddRange(Indeterminate, first, count);
                    return;
                }
                for (int i = 0; i < count; i++)
                {
                    Acked.Add(new Ack(first + i, offsets[i].Partition, offsets[i].Offset));
                }
                Interlocked.Add(ref _ackedRecords, count);
                Replays += replayed ? 1 : 0;
                return;
            }
            Count(status is null ? "no answer" : $"{(int)status} {code}");
            bool retryable = status is null or >= HttpStatusCode.InternalServerError or HttpStatusCode.Conflict or HttpStatusCode.TooManyRequests;
            if (idempotent && retryable)
            {
                continue;
            }
            AddRange(status is null or >= HttpStatusCode.InternalServerError ? Indeterminate : Rejected, first, count);
            return;
        }
    }

    /// <summary>One attempt: the status (null when no answer came: connection reset, refused, timeout), and on 200 the offsets.</summary>
    private async Task<(HttpStatusCode? Status, string? Code, List<(int Partition, long Offset)> Offsets, bool Replayed)> SendAsync(string body, string? key)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            if (key is not null)
            {
                request.Headers.Add("Idempotency-Key", key);
            }
            using var response = await client.SendAsync(request);
            byte[] answer = await response.Content.ReadAsByteArrayAsync();
            var offsets = new List<(int, long)>();
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return (response.StatusCode, ProblemJson.Code(answer), offsets, false);
            }
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
                offsets.Clear(); // counted as a malformed answer by the caller
            }
            bool replayed = response.Headers.TryGetValues("Idempotency-Replayed", out var values) && values.Contains("true", StringComparer.OrdinalIgnoreCase);
            return (HttpStatusCode.OK, null, offsets, replayed);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
        {
            return (null, null, [], false);
        }
    }

    private string Body(long first, int count, bool keyed)
    {
        var body = new StringBuilder("{\"records\":[");
        for (int i = 0; i < count; i++)
        {
            body.Append(i == 0 ? "{" : ",{");
            if (keyed)
            {
                body.Append("\"key\":\"k").Append(_random.Next(1000)).Append("\",");
            }
            body.Append("\"value\":\"").Append(RecordId.Format(id, first + i)).Append("\"}");
        }
        return body.Append("]}").ToString();
    }

    private void Count(string error) => Errors[error] = Errors.GetValueOrDefault(error) + 1;

    private static void AddRange(List<long> list, long first, int count)
    {
        for (int i = 0; i < count; i++)
        {
            list.Add(first + i);
        }
    }

    /// <summary>An acknowledged record: the producer's sequence and where the server said it landed.</summary>
    internal readonly record struct Ack(long Sequence, int Partition, long Offset);
}
