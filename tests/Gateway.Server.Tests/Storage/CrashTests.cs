using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// The durability promise, proven with a real process: records acknowledged with acks=disk survive SIGKILL, at the
/// offsets they were acknowledged at, exactly once, with no gaps; graceful shutdown commits memory-acked records.
/// </summary>
public sealed class CrashTests : IDisposable
{
    private const int Partitions = 4;
    private readonly TempDirectory _dataDirectory = new("gateway-crash-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Acknowledged_records_survive_kill_9_exactly_once_at_their_offsets(bool checkpoints)
    {
        // With checkpoints every 4 KB and nothing verified before opening, each restart recovers from a recovery
        // checkpoint behind the tail and verifies the rest in the background while the records are read back.
        string[] args = checkpoints ? ["--Storage:RecoveryCheckpointBytes=4096", "--Storage:VerifyBeforeOpenBytes=0"] : [];
        var acknowledged = new ConcurrentDictionary<string, (int Partition, long Offset)>();
        var random = new Random(7);
        for (int cycle = 0; cycle < 3; cycle++)
        {
            await using (var server = await ServerProcess.StartAsync(_dataDirectory.Path, args))
            {
                if (cycle == 0)
                {
                    await Http.CreateTopicAsync(server.Client, "crash", Partitions);
                }
                else
                {
                    await VerifyAsync(server.Client, acknowledged);
                }
                using var stop = new CancellationTokenSource();
                var producers = Enumerable.Range(0, 32).Select(w => ProduceUntilFailureAsync(server.Address, cycle, w, acknowledged, stop.Token)).ToArray();
                int before = acknowledged.Count;
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (acknowledged.Count < before + 300 && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(20);
                }
                await Task.Delay(random.Next(0, 200));
                server.Kill();
                await stop.CancelAsync();
                await Task.WhenAll(producers);
                Assert.True(acknowledged.Count >= before + 300, $"cycle {cycle}: only {acknowledged.Count - before} acknowledgements before the kill\n{server.Output}");
            }
        }
        await using (var server = await ServerProcess.StartAsync(_dataDirectory.Path, args))
        {
            await VerifyAsync(server.Client, acknowledged);
            if (checkpoints)
            {
                Assert.True(File.Exists(Path.Combine(_dataDirectory.Path, "topics", "crash", "0", "recovery.checkpoint")));
            }
            // Whatever the background verification found is in readiness: nothing.
            await Task.Delay(500);
            using var ready = await server.Client.GetAsync("/health/ready");
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }
    }

    [Fact]
    public async Task Graceful_shutdown_commits_memory_acknowledged_records()
    {
        var values = new List<string>();
        await using (var server = await ServerProcess.StartAsync(_dataDirectory.Path, "--Storage:FlushIntervalMs=60000"))
        {
            await Http.CreateTopicAsync(server.Client, "graceful", 1);
            for (int i = 0; i < 50; i++)
            {
                await Http.ProduceAsync(server.Client, "graceful", $$"""[{"value":"m{{i}}"}]""", "?acks=memory");
                values.Add($"m{i}");
            }
            await server.StopAsync();
        }
        await using (var server = await ServerProcess.StartAsync(_dataDirectory.Path))
        {
            var fetched = await Http.GetJsonAsync(server.Client, "/v1/topics/graceful/partitions/0/records?offset=0&limit=1000");
            Assert.Equal(values, Http.Records(fetched).Select(r => (string)r!["value"]!));
        }
    }

    [Fact]
    public async Task Retried_idempotent_requests_land_exactly_once_across_kill_9()
    {
        var unanswered = new ConcurrentDictionary<string, string>();
        var answered = new ConcurrentDictionary<string, (int Partition, long Offset)[]>();
        var random = new Random(11);
        for (int cycle = 0; cycle <= 3; cycle++)
        {
            await using var server = await ServerProcess.StartAsync(_dataDirectory.Path);
            if (cycle == 0)
            {
                await Http.CreateTopicAsync(server.Client, "crash", Partitions);
            }
            // Every request the crash left unanswered is retried with its key: it must land exactly once.
            foreach (var (key, body) in unanswered.ToArray())
            {
                var offsets = await SendAsync(server.Client, key, body, CancellationToken.None) ?? throw new InvalidOperationException($"retry of {key} failed");
                answered[key] = offsets;
                unanswered.TryRemove(key, out _);
            }
            if (cycle == 3)
            {
                await VerifyIdempotentAsync(server.Client, answered);
                return;
            }
            using var stop = new CancellationTokenSource();
            var producers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
            {
                using var client = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
                for (int seq = 0; !stop.IsCancellationRequested; seq++)
                {
                    string key = $"c{cycle}-w{w}-s{seq}";
                    string body = "{\"records\":[" + string.Join(",", Enumerable.Range(0, 1 + (seq % 3)).Select(i => $$"""{"value":"{{key}}-{{i}}"}""")) + "]}";
                    unanswered[key] = body;
                    var offsets = await SendAsync(client, key, body, stop.Token);
                    if (offsets is null)
                    {
                        return;
                    }
                    answered[key] = offsets;
                    unanswered.TryRemove(key, out _);
                }
            })).ToArray();
            int before = answered.Count;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (answered.Count < before + 200 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
            await Task.Delay(random.Next(0, 100));
            server.Kill();
            await stop.CancelAsync();
            await Task.WhenAll(producers);
        }
    }

    /// <summary>Sends one keyed produce; null when the server did not answer (it died).</summary>
    private static async Task<(int Partition, long Offset)[]?> SendAsync(HttpClient client, string key, string body, CancellationToken stop)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/topics/crash/records?acks=disk") { Content = Http.Json(body) };
            request.Headers.Add("Idempotency-Key", key);
            using var response = await client.SendAsync(request, stop);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return null;
            }
            var offsets = JsonNode.Parse(await response.Content.ReadAsStringAsync(stop))!["offsets"]!.AsArray();
            return [.. offsets.Select(o => ((int)o!["partition"]!, (long)o["offset"]!))];
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
        {
            return null;
        }
    }

    /// <summary>Every key's records are in the log exactly once, at the offsets its answer gave; no record is there twice.</summary>
    private static async Task VerifyIdempotentAsync(HttpClient client, ConcurrentDictionary<string, (int Partition, long Offset)[]> answered)
    {
        var seen = new Dictionary<string, (int, long)>();
        int duplicates = 0;
        for (int p = 0; p < Partitions; p++)
        {
            long next = 0;
            while (true)
            {
                var records = Http.Records(await Http.GetJsonAsync(client, $"/v1/topics/crash/partitions/{p}/records?offset={next}&limit=10000&maxBytes=16000000"));
                if (records.Count == 0)
                {
                    break;
                }
                foreach (var record in records)
                {
                    long offset = (long)record!["offset"]!;
                    if (!seen.TryAdd((string)record["value"]!, (p, offset)))
                    {
                        duplicates++;
                    }
                    next = offset + 1;
                }
            }
        }
        Assert.Equal(0, duplicates);
        foreach (var (key, offsets) in answered)
        {
            for (int i = 0; i < offsets.Length; i++)
            {
                Assert.True(seen.TryGetValue($"{key}-{i}", out var at) && at == offsets[i], $"{key}-{i} is not at {offsets[i]}");
            }
        }
        Assert.True(answered.Count > 600, $"only {answered.Count} keys answered");
    }

    /// <summary>Produces one- and three-record requests until the server dies; keeps what was acknowledged.</summary>
    private static async Task ProduceUntilFailureAsync(Uri address, int cycle, int worker, ConcurrentDictionary<string, (int, long)> acknowledged, CancellationToken stop)
    {
        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        for (int seq = 0; !stop.IsCancellationRequested; seq++)
        {
            int count = seq % 2 == 0 ? 1 : 3;
            string[] values = [.. Enumerable.Range(0, count).Select(i => $"c{cycle}-w{worker}-s{seq}-{i}")];
            string records = "[" + string.Join(",", values.Select(v => $$"""{"key":"{{v}}","value":"{{v}}"}""")) + "]";
            try
            {
                using var response = await client.PostAsync("/v1/topics/crash/records?acks=disk", Http.Json($$"""{"records":{{records}}}"""), stop);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return;
                }
                var offsets = JsonNode.Parse(await response.Content.ReadAsStringAsync(stop))!["offsets"]!.AsArray();
                for (int i = 0; i < count; i++)
                {
                    acknowledged[values[i]] = ((int)offsets[i]!["partition"]!, (long)offsets[i]!["offset"]!);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
            {
                return;
            }
        }
    }

    /// <summary>Jepsen-style check: no acknowledged record lost or moved, no duplicates, no offset gaps.</summary>
    private static async Task VerifyAsync(HttpClient client, ConcurrentDictionary<string, (int Partition, long Offset)> acknowledged)
    {
        var seen = new Dictionary<string, (int, long)>();
        for (int p = 0; p < Partitions; p++)
        {
            long next = 0;
            while (true)
            {
                var page = await Http.GetJsonAsync(client, $"/v1/topics/crash/partitions/{p}/records?offset={next}&limit=10000&maxBytes=16000000");
                var records = Http.Records(page);
                foreach (var record in records)
                {
                    long offset = (long)record!["offset"]!;
                    Assert.Equal(next, offset);
                    string value = (string)record["value"]!;
                    Assert.True(seen.TryAdd(value, (p, offset)), $"duplicate: {value}");
                    next = offset + 1;
                }
                if (records.Count == 0)
                {
                    Assert.Equal((long)page["endOffset"]!, next);
                    break;
                }
            }
        }
        var lost = acknowledged.Where(a => !seen.TryGetValue(a.Key, out var at) || at != a.Value).Select(a => a.Key).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged records lost or moved, e.g. {string.Join(", ", lost.Take(5))}");
    }
}
