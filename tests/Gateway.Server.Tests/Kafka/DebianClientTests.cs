using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// Debian's Kafka clients against the listener: kcat 1.7 and python3-confluent-kafka, both on librdkafka 2.0.2, the
/// version that turns features on only when the broker's ranges hold exact old versions. <c>.ci/run</c> installs them;
/// without them these tests skip and say why.
/// </summary>
public sealed class DebianClientTests : IAsyncLifetime
{
    private KafkaServer _server = null!;

    public async Task InitializeAsync() => _server = await KafkaServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [SkippableFact]
    public async Task Kcat_lists_produces_and_consumes_and_HTTP_and_SSE_see_what_it_produced()
    {
        Skip.IfNot(await RunsAsync("kcat", "-V"), "kcat is not installed (.ci/run installs Debian's kcat)");
        await Http.CreateTopicAsync(_server.Http, "kcat", 2);
        await using var stream = await SseClient.OpenAsync(_server.Http, "/v1/topics/kcat/events");

        var (listed, list) = await RunAsync("kcat", null, "-b", _server.Bootstrap, "-L", "-t", "kcat");
        Assert.True(listed == 0, list);
        Assert.Contains("topic \"kcat\" with 2 partitions", list, StringComparison.Ordinal);

        var (produced, produceOutput) = await RunAsync("kcat", "a:one\nb:two\nc:three\n", "-b", _server.Bootstrap, "-P", "-t", "kcat", "-p", "1", "-K", ":");
        Assert.True(produced == 0, produceOutput);

        var records = Http.Records(await Http.GetJsonAsync(_server.Http, "/v1/topics/kcat/partitions/1/records?offset=0"));
        Assert.Equal(["one", "two", "three"], records.Select(r => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String((string)r!["valueBase64"]!))));
        Assert.Equal(["a", "b", "c"], records.Select(r => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String((string)r!["keyBase64"]!))));
        foreach (string expected in new[] { "one", "two", "three" })
        {
            // The stream was open before kcat produced: the records arrive as they are committed.
            var streamed = System.Text.Json.Nodes.JsonNode.Parse((await stream.NextAsync()).Data)!;
            Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(Convert.FromBase64String((string)streamed["valueBase64"]!)));
        }

        await Http.ProduceAsync(_server.Http, "kcat", """[{"partition":1,"key":"d","value":"four"}]""");
        var (consumed, output) = await RunAsync("kcat", null, "-b", _server.Bootstrap, "-C", "-t", "kcat", "-p", "1", "-o", "beginning", "-e", "-f", "%o %k=%s\\n");
        Assert.True(consumed == 0, output);
        Assert.Equal(["0 a=one", "1 b=two", "2 c=three", "3 d=four"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => l.Length > 0 && char.IsDigit(l[0])));
    }

    [SkippableFact]
    public async Task Kcat_reads_as_a_group_member_and_the_group_commits_what_it_read()
    {
        Skip.IfNot(await RunsAsync("kcat", "-V"), "kcat is not installed (.ci/run installs Debian's kcat)");
        await Http.CreateTopicAsync(_server.Http, "kcat-group", 2);
        await Http.ProduceAsync(_server.Http, "kcat-group", """[{"partition":0,"value":"a"},{"partition":1,"value":"b"},{"partition":0,"value":"c"}]""");

        var (exit, output) = await RunAsync("kcat", null, "-b", _server.Bootstrap, "-G", "kcat-readers", "kcat-group", "-o", "beginning", "-e", "-f", "%s\n",
            "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100");

        Assert.True(exit == 0, output);
        Assert.Equal(["a", "b", "c"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => l.Length == 1).Order());
        var group = await Http.GetJsonAsync(_server.Http, "/v1/groups/kcat-readers");
        Assert.Equal([2L, 1L], group["offsets"]!.AsArray().Select(o => (long?)o!["committedOffset"] ?? -1));
    }

    [SkippableFact]
    public async Task Debians_python_client_produces_with_acks_all_and_reads_back()
    {
        Skip.IfNot(await RunsAsync("/usr/bin/python3", "-c", "import confluent_kafka"), "python3-confluent-kafka is not installed (.ci/run installs it)");
        await Http.CreateTopicAsync(_server.Http, "python", 1);
        string script = $$"""
            import json
            from confluent_kafka import Producer, Consumer, TopicPartition
            p = Producer({'bootstrap.servers': '{{_server.Bootstrap}}', 'acks': 'all', 'enable.idempotence': True})
            offsets = []
            for i in range(50):
                p.produce('python', key=f'k{i}', value=json.dumps({'n': i}), headers={'h': str(i)},
                          on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset()))
            p.flush(10)
            c = Consumer({'bootstrap.servers': '{{_server.Bootstrap}}', 'group.id': 'unused', 'enable.auto.commit': False})
            c.assign([TopicPartition('python', 0, 0)])
            seen = []
            while len(seen) < 50:
                m = c.poll(10)
                if m is None:
                    break
                if m.error():
                    continue
                seen.append(json.loads(m.value())['n'])
            low, high = c.get_watermark_offsets(TopicPartition('python', 0), timeout=10)
            c.close()
            print(json.dumps({'offsets': offsets, 'seen': seen, 'low': low, 'high': high}))
            """;
        var (exit, output) = await RunAsync("/usr/bin/python3", script, "-");
        Assert.True(exit == 0, output);

        var result = JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last())!;
        Assert.Equal(Enumerable.Range(0, 50), result["offsets"]!.AsArray().Select(o => (int)o!));
        Assert.Equal(Enumerable.Range(0, 50), result["seen"]!.AsArray().Select(o => (int)o!));
        Assert.Equal(0, (int)result["low"]!);
        Assert.Equal(50, (int)result["high"]!);
        var first = Assert.Single(Http.Records(await Http.GetJsonAsync(_server.Http, "/v1/topics/python/partitions/0/records?offset=0&limit=1")));
        Assert.Equal("""{"n": 0}""", System.Text.Encoding.UTF8.GetString(Convert.FromBase64String((string)first!["valueBase64"]!)));
    }

    private static async Task<bool> RunsAsync(string file, params string[] args)
    {
        try
        {
            return (await RunAsync(file, null, args)).ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // not installed
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string? input, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
        }
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"{file} did not finish in 60 s\n{await stdout}\n{await stderr}");
        }
        return (process.ExitCode, process.ExitCode == 0 ? await stdout : $"{await stdout}\n{await stderr}");
    }
}
