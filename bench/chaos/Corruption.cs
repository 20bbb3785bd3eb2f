using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Gateway.Chaos;

/// <summary>
/// Damage on disk inside the committed range of a partition, one scenario at a time, each on its own copy of a small
/// data set written and stopped gracefully beforehand (so every byte of it is committed and acknowledged). The server
/// must start, refuse the damaged partition (500 <c>log_corrupted</c>, /health/ready 503 at once or, for a partition
/// that starts at rest, once its files are verified in the background) and keep serving the others;
/// it must never serve the damaged partition empty, shortened or changed, nor append over it.
/// </summary>
internal sealed class Corruption(Options options, ServerLog log)
{
    private const string Topic = "damage";
    private const int Partitions = 2;
    private const int Damaged = 0;
    private const int RequestsPerPartition = 300;

    public List<ScenarioResult> Results { get; } = [];

    public long RecordsPerPartition { get; private set; }

    /// <summary>The scenario names, in the order they run (no damage is done to list them).</summary>
    public static IReadOnlyList<string> ScenarioNames => [.. Scenarios([(SegmentFile.FirstAddress, 100)], new Random(0)).Select(s => s.Name)];

    public int Failed => Results.Count(r => !r.Ok);

    public int SilentLosses => Results.Count(r => r.SilentLoss);

    public async Task RunAsync()
    {
        string root = Path.Combine(options.WorkDirectory, "corruption");
        string pristine = Path.Combine(root, "pristine");
        int port = GatewayProcess.FreePort();
        var expected = await WriteDataSetAsync(pristine, port);
        RecordsPerPartition = expected[Damaged].Count;

        string partitionDir = Path.Combine(pristine, "topics", Topic, Damaged.ToString(CultureInfo.InvariantCulture));
        var entries = SegmentFile.Entries(Path.Combine(partitionDir, "data.log.0"));
        string commitFile = Path.Combine(partitionDir, "commit.record");
        if (entries.Count != RequestsPerPartition || SegmentFile.UntilAddress(commitFile) != SegmentFile.End(entries[^1]))
        {
            throw new ChaosFailure($"the segment of {Topic}/{Damaged} does not look as expected ({entries.Count} entries for {RequestsPerPartition} batches, "
                + $"committed until {SegmentFile.UntilAddress(commitFile)}, entries end at {SegmentFile.End(entries[^1])}): FasterLog's format changed?");
        }

        foreach (var scenario in Scenarios(entries, new Random(options.Seed)).Where(s => options.Scenarios?.Contains(s.Name) != false))
        {
            string copy = Path.Combine(root, scenario.Name);
            CopyDirectory(pristine, copy);
            string dir = Path.Combine(copy, "topics", Topic, Damaged.ToString(CultureInfo.InvariantCulture));
            scenario.Apply(dir);
            Console.Error.WriteLine($"[chaos] corruption: {scenario.Name}");
            Results.Add(await ProbeAsync(scenario, copy, port, expected));
            Directory.Delete(copy, recursive: true);
        }
    }

    private static IEnumerable<Scenario> Scenarios(List<(long Address, int Length)> entries, Random random)
    {
        // Offsets inside a Kafka v2 batch: partitionLeaderEpoch at 12..15 (not covered by the batch CRC), CRC-32C
        // over bytes 21.. (attributes, offsets, timestamps, producer fields, records).
        const int LeaderEpoch = 12, CrcCovered = 21;
        const string Segment = "data.log.0";
        var middle = entries[entries.Count / 2];
        var last = entries[^1];
        static long Payload((long Address, int Length) entry, int at) => entry.Address + SegmentFile.HeaderBytes + at;
        long inMiddle = Payload(middle, CrcCovered + random.Next(middle.Length - CrcCovered));
        long inLast = Payload(last, CrcCovered + random.Next(last.Length - CrcCovered));
        long committedEnd = SegmentFile.End(last);
        long halfLast = Payload(last, last.Length / 2);
        static string CommitFile(string dir) => Path.Combine(dir, "commit.record");

        yield return new("control", "no damage (checks the harness: everything must be served)", _ => { });
        yield return new("flip-batch-byte", $"byte {inMiddle} of {Segment} XOR 0xFF: inside the CRC-covered part of the middle batch ({entries.Count / 2} of {entries.Count})",
            dir => SegmentFile.FlipByte(Path.Combine(dir, Segment), inMiddle));
        yield return new("flip-batch-epoch", $"byte {Payload(middle, LeaderEpoch)} of {Segment} XOR 0xFF: the middle batch's partitionLeaderEpoch, outside the batch CRC (only FasterLog's per-entry checksum covers it)",
            dir => SegmentFile.FlipByte(Path.Combine(dir, Segment), Payload(middle, LeaderEpoch)));
        yield return new("flip-last-batch-byte", $"byte {inLast} of {Segment} XOR 0xFF: inside the CRC-covered part of the last committed batch",
            dir => SegmentFile.FlipByte(Path.Combine(dir, Segment), inLast));
        yield return new("flip-entry-length", $"byte {middle.Address + 8} of {Segment} XOR 0xFF: the low byte of the middle entry's FasterLog length",
            dir => SegmentFile.FlipByte(Path.Combine(dir, Segment), middle.Address + 8));
        yield return new("zero-entry-length", $"bytes {middle.Address + 8}..{middle.Address + 11} of {Segment} set to 0: the middle entry's length reads as page padding",
            dir => SegmentFile.WriteZeros(Path.Combine(dir, Segment), middle.Address + 8, 4));
        yield return new("truncate-middle", $"{Segment} truncated to {middle.Address} bytes: the second half of the committed range (to {committedEnd}) is gone",
            dir => SegmentFile.Truncate(Path.Combine(dir, Segment), middle.Address));
        yield return new("truncate-last-batch", $"{Segment} truncated to {halfLast} bytes: the committed range ends at {committedEnd}, the last batch is cut in half",
            dir => SegmentFile.Truncate(Path.Combine(dir, Segment), halfLast));
        yield return new("segment-deleted", $"{Segment} deleted (the commit file still records the committed range up to {committedEnd})",
            dir => File.Delete(Path.Combine(dir, Segment)));
        yield return new("commit-until-short", $"the committed-until address in commit.record set from {committedEnd} to {last.Address}: the commit leaves out the last batch, its next offset still counts it",
            dir => SegmentFile.WriteInt64(CommitFile(dir), SegmentFile.UntilAddressOffset, last.Address));
        yield return new("commit-deleted", "commit.record deleted (the segment still holds every batch)",
            dir => File.Delete(CommitFile(dir)));
    }

    /// <summary>Writes the data set: 300 acknowledged batches of 1-5 records per partition, then a graceful stop.</summary>
    private async Task<List<string>[]> WriteDataSetAsync(string dataDirectory, int port)
    {
        log.Mark("corruption: writing the data set");
        using var server = GatewayProcess.Start(options, port, dataDirectory, log);
        await server.WaitReadyAsync(TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
        await SendAsync(client, HttpMethod.Post, "/v1/topics", $$"""{"name":"{{Topic}}","partitions":{{Partitions}}}""", HttpStatusCode.Created);
        var random = new Random(options.Seed);
        var expected = new List<string>[Partitions];
        for (int p = 0; p < Partitions; p++)
        {
            expected[p] = [];
            for (int request = 0; request < RequestsPerPartition; request++)
            {
                int count = random.Next(1, 6);
                var values = Enumerable.Range(expected[p].Count, count).Select(i => $"d{p}-{i}").ToList();
                string body = $$"""{"records":[{{string.Join(',', values.Select(v => $$"""{"value":"{{v}}"}"""))}}]}""";
                using var json = await SendAsync(client, HttpMethod.Post, $"/v1/topics/{Topic}/partitions/{p}/records?acks=disk", body, HttpStatusCode.OK);
                var offsets = json.RootElement.GetProperty("offsets").EnumerateArray().Select(o => o.GetProperty("offset").GetInt64()).ToList();
                if (!offsets.SequenceEqual(Enumerable.Range(expected[p].Count, count).Select(i => (long)i)))
                {
                    throw new ChaosFailure($"corruption data set: partition {p} acknowledged offsets {string.Join(',', offsets)} for records {values[0]}..");
                }
                expected[p].AddRange(values);
            }
        }
        await server.StopAsync(TimeSpan.FromSeconds(60));
        return expected;
    }

    private async Task<ScenarioResult> ProbeAsync(Scenario scenario, string dataDirectory, int port, List<string>[] expected)
    {
        log.Mark($"corruption scenario {scenario.Name}: {scenario.Damage}");
        var result = new ScenarioResult(scenario.Name, scenario.Damage);
        using var server = GatewayProcess.Start(options, port, dataDirectory, log);
        using var client = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            if (await server.WaitAsync("/health/live", TimeSpan.FromSeconds(60)) != HttpStatusCode.OK)
            {
                result.Problems.Add("/health/live never answered 200");
                return Judge(result, expected);
            }
        }
        catch (ChaosFailure ex)
        {
            result.Problems.Add($"did not start: {ex.Message}");
            return Judge(result, expected);
        }
        result.Started = true;
        // A partition recovered at start is judged before the server listens, one that starts at rest (stopped
        // gracefully) is verified from its files once the server serves: the answer taken is the one two seconds after
        // the first 200, or a second after the first 503 (polling faster would fill the log: every 503 is logged).
        (result.Ready, result.ReadyBody) = await ReadyAsync(client);
        await Task.Delay(result.Ready == 200 ? 2000 : 1000);
        (result.Ready, result.ReadyBody) = await ReadyAsync(client);

        using (var describe = await client.GetAsync(new Uri($"/v1/topics/{Topic}", UriKind.Relative)))
        {
            byte[] body = await describe.Content.ReadAsByteArrayAsync();
            result.Describe = $"{(int)describe.StatusCode}";
            if (describe.StatusCode == HttpStatusCode.OK)
            {
                using var json = JsonDocument.Parse(body);
                var partition = json.RootElement.GetProperty("partitions")[Damaged];
                result.DescribedEnd = partition.GetProperty("endOffset").GetInt64();
                result.Describe += $" (endOffset {result.DescribedEnd})";
            }
            else
            {
                result.Describe += $" {ProblemJson.Code(body)}";
            }
        }
        (result.Served, result.Wrong, result.FetchError) = await ReadAsync(client, Damaged, expected[Damaged]);
        var (healthyServed, healthyWrong, healthyError) = await ReadAsync(client, 1 - Damaged, expected[1 - Damaged]);
        result.OtherPartitionIntact = healthyServed == expected[1 - Damaged].Count && healthyWrong == 0 && healthyError is null;

        using (var produce = await client.PostAsync(new Uri($"/v1/topics/{Topic}/partitions/{Damaged}/records?acks=disk", UriKind.Relative),
            new StringContent("""{"records":[{"value":"after-damage"}]}""", Encoding.UTF8, "application/json")))
        {
            byte[] body = await produce.Content.ReadAsByteArrayAsync();
            if (produce.StatusCode == HttpStatusCode.OK)
            {
                using var json = JsonDocument.Parse(body);
                result.ProducedAt = json.RootElement.GetProperty("offsets")[0].GetProperty("offset").GetInt64();
                result.Produce = $"200 at offset {result.ProducedAt}";
            }
            else
            {
                result.Produce = $"{(int)produce.StatusCode} {ProblemJson.Code(body)}";
            }
        }
        var said = log.SinceMark;
        result.ServerSaid = said.FirstOrDefault(l => l.Contains("cannot serve", StringComparison.Ordinal)) ?? (said.Count > 0 ? said[0] : null);
        server.Kill();
        return Judge(result, expected);
    }

    /// <summary>Reads a partition from offset 0 as far as the server serves it: records matching, records wrong, and the error that stopped it.</summary>
    private static async Task<(int Served, int Wrong, string? Error)> ReadAsync(HttpClient client, int partition, List<string> expected)
    {
        int served = 0, wrong = 0;
        long offset = 0;
        while (true)
        {
            using var response = await client.GetAsync(new Uri($"/v1/topics/{Topic}/partitions/{partition}/records?offset={offset}&limit=1000", UriKind.Relative));
            byte[] body = await response.Content.ReadAsByteArrayAsync();
            if (response.StatusCode != HttpStatusCode.OK)
            {
                string range = response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable ? $" ({Range(body)})" : "";
                return (served, wrong, $"{(int)response.StatusCode} {ProblemJson.Code(body)} at offset {offset}{range}");
            }
            using var json = JsonDocument.Parse(body);
            int count = 0;
            foreach (var record in json.RootElement.GetProperty("records").EnumerateArray())
            {
                long at = record.GetProperty("offset").GetInt64();
                var value = record.GetProperty("value");
                bool right = at == offset && at < expected.Count && value.ValueKind == JsonValueKind.String && value.GetString() == expected[(int)at];
                served += right ? 1 : 0;
                wrong += right ? 0 : 1;
                offset = at + 1;
                count++;
            }
            if (count == 0)
            {
                return (served, wrong, null);
            }
        }
    }

    private static async Task<(int? Status, string Body)> ReadyAsync(HttpClient client)
    {
        try
        {
            using var response = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));
            string body = await response.Content.ReadAsStringAsync();
            return ((int)response.StatusCode, body.Length > 120 ? body[..120] + "…" : body);
        }
        catch (HttpRequestException)
        {
            return (null, "");
        }
    }

    private static string Range(byte[] problem)
    {
        using var json = JsonDocument.Parse(problem);
        return json.RootElement.TryGetProperty("beginOffset", out var begin) && json.RootElement.TryGetProperty("endOffset", out var end)
            ? $"beginOffset {begin.GetInt64()}, endOffset {end.GetInt64()}"
            : "no range given";
    }

    private static ScenarioResult Judge(ScenarioResult result, List<string>[] expected)
    {
        int all = expected[Damaged].Count;
        bool refused = result.FetchError?.StartsWith("500 log_corrupted", StringComparison.Ordinal) == true;
        bool intact = result.FetchError is null && result.Served == all && result.Wrong == 0;
        if (!result.Started)
        {
            result.Verdict = "did not start";
            return result;
        }
        if (result.Wrong > 0)
        {
            result.SilentLoss = true;
            result.Problems.Add($"served {result.Wrong} record(s) that differ from what was acknowledged");
        }
        if (!refused && result.Served < all)
        {
            result.SilentLoss = true;
            result.Problems.Add(result.FetchError is null
                ? $"served {result.Served} of {all} acknowledged records, then an end of log, without an error"
                : $"served {result.Served} of {all} acknowledged records, then {result.FetchError} instead of 500 log_corrupted");
        }
        if (result.ProducedAt is long at && at < all)
        {
            result.SilentLoss = true;
            result.Problems.Add($"appended a new record at offset {at}, inside the acknowledged range [0, {all})");
        }
        if (!result.OtherPartitionIntact)
        {
            result.Problems.Add("the undamaged partition was not served in full");
        }
        if (result.Ready == 200 && !intact)
        {
            result.Problems.Add("/health/ready answered 200");
        }
        if (intact)
        {
            if (result.Ready != 200)
            {
                result.Problems.Add($"/health/ready answered {result.Ready?.ToString(CultureInfo.InvariantCulture) ?? "nothing"} with every record intact");
            }
            if (result.ProducedAt != all)
            {
                result.Problems.Add($"produce after the log: {result.Produce} (expected offset {all})");
            }
        }
        if (intact && result.Name != "control")
        {
            result.Notes.Add("the damaged bytes are not part of what is served, but the stored batch is no longer the one written");
        }
        if (refused && result.DescribedEnd is long end && end < all)
        {
            // Not a loss (nothing is served), but not what the README promises ("the topic is never shown empty").
            result.Notes.Add($"GET /v1/topics/{Topic} shows the refused partition with endOffset {end}");
        }
        result.Verdict = result.Name == "control" ? "served in full"
            : intact ? "not detected, every record served intact"
            : refused ? $"refused: fetch {result.FetchError}, produce {result.Produce}, ready {result.Ready?.ToString(CultureInfo.InvariantCulture) ?? "-"}"
            : "served a short log";
        return result;
    }

    private static async Task<JsonDocument> SendAsync(HttpClient client, HttpMethod method, string path, string body, HttpStatusCode expected)
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await client.SendAsync(request);
        byte[] answer = await response.Content.ReadAsByteArrayAsync();
        return response.StatusCode == expected
            ? JsonDocument.Parse(answer)
            : throw new ChaosFailure($"corruption data set: {method} {path}: {(int)response.StatusCode} {Encoding.UTF8.GetString(answer)}");
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
        foreach (string dir in Directory.GetDirectories(from))
        {
            CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
        }
    }

    private sealed record Scenario(string Name, string Damage, Action<string> Apply);

    /// <summary>What the server did with one kind of damage, and whether that is what it promises.</summary>
    internal sealed class ScenarioResult(string name, string damage)
    {
        public string Name => name;

        public string Damage => damage;

        public bool Started { get; set; }

        public int? Ready { get; set; }

        public string ReadyBody { get; set; } = "";

        public string Describe { get; set; } = "-";

        public long? DescribedEnd { get; set; }

        public int Served { get; set; }

        public int Wrong { get; set; }

        public string? FetchError { get; set; }

        public bool OtherPartitionIntact { get; set; }

        public string Produce { get; set; } = "-";

        public long? ProducedAt { get; set; }

        public string? ServerSaid { get; set; }

        public string Verdict { get; set; } = "";

        public bool SilentLoss { get; set; }

        public List<string> Problems { get; } = [];

        /// <summary>Deviations from the documentation that lose nothing.</summary>
        public List<string> Notes { get; } = [];

        public bool Ok => Started && Problems.Count == 0;
    }
}
