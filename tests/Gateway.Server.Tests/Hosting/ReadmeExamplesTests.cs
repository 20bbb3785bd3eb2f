using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Gateway.Server.Tests.Hosting;

/// <summary>
/// The README's curl examples, run as written against a real server (only the address is changed to the server's
/// own), in order: each must answer 2xx, and where the README shows an answer (<c># → …</c>), the answer must hold it
/// (every member shown, with the value shown; members left out, such as timestamps, are not compared). Event streams
/// are read for a few seconds and must carry records. So the documentation cannot drift from the server.
/// </summary>
public sealed class ReadmeExamplesTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory _workDirectory = new("gateway-readme-tests", create: false);

    public void Dispose()
    {
        _workDirectory.Dispose();
    }

    [Fact]
    public async Task The_quick_start_examples_answer_what_the_readme_shows()
    {
        var examples = Examples(Block("### With curl"));
        Assert.True(examples.Count >= 8, $"only {examples.Count} examples were found");
        await using var server = await ServerProcess.StartAsync(Path.Combine(_workDirectory.Path, "data"));
        await RunAsync(server, examples);
    }

    [Fact]
    public async Task The_docker_compose_example_answers_with_the_compose_files_key()
    {
        // The compose file's environment, given to a server of our own: the same key, the same settings.
        var environment = ComposeEnvironment();
        Assert.Contains("Auth__ApiKeys__0__Hash", environment.Keys);
        var examples = Examples(Block("docker compose -f docker/compose.yaml up --build")).Where(e => !e.Command.StartsWith("docker", StringComparison.Ordinal)).ToList();
        Assert.Single(examples);
        await using var server = await ServerProcess.StartAsync(Path.Combine(_workDirectory.Path, "data"), environment);
        await RunAsync(server, examples);
    }

    private async Task RunAsync(ServerProcess server, List<Example> examples)
    {
        Directory.CreateDirectory(_workDirectory.Path);
        // curl reads this beside the commands as written: the status after the body, and an end to endless streams.
        await File.WriteAllTextAsync(Path.Combine(_workDirectory.Path, ".curlrc"), "write-out = \"\\n%{http_code}\"\nmax-time = 3\n");
        foreach (var example in examples)
        {
            string command = example.Command.Replace("localhost:8080", $"{server.Address.Host}:{server.Address.Port}", StringComparison.Ordinal);
            var (exitCode, text) = await BashAsync(command);
            int newline = text.LastIndexOf('\n');
            string body = newline < 0 ? "" : text[..newline];
            string status = text[(newline + 1)..];
            output.WriteLine($"$ {example.Command}\n{body}\n[{status}]");
            Assert.True(status.StartsWith('2'), $"{example.Command}\nanswered {status}: {body}");
            bool stream = example.Command.Contains(" -sN ", StringComparison.Ordinal);
            if (stream)
            {
                Assert.True(exitCode is 0 or 28, $"{example.Command}\nexited with {exitCode}");
                Assert.Contains("event: record", body, StringComparison.Ordinal);
                continue;
            }
            Assert.True(exitCode == 0, $"{example.Command}\nexited with {exitCode}: {body}");
            if (example.Expected is { } expected)
            {
                var actual = JsonNode.Parse(body);
                Assert.True(Holds(actual, JsonNode.Parse(expected)), $"{example.Command}\nREADME shows:  {expected}\nserver answered: {body}");
            }
        }
    }

    /// <summary>Whether <paramref name="actual"/> has every member <paramref name="shown"/> has, with the same values.</summary>
    private static bool Holds(JsonNode? actual, JsonNode? shown) => (actual, shown) switch
    {
        (_, null) => actual is null,
        (JsonObject a, JsonObject s) => s.All(m => a.ContainsKey(m.Key) && Holds(a[m.Key], m.Value)),
        (JsonArray a, JsonArray s) => a.Count == s.Count && a.Zip(s).All(p => Holds(p.First, p.Second)),
        (JsonValue a, JsonValue s) => a.ToJsonString() == s.ToJsonString(),
        _ => false,
    };

    private async Task<(int ExitCode, string Output)> BashAsync(string command)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        start.Environment["CURL_HOME"] = _workDirectory.Path;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        string errors = await stderr;
        return (process.ExitCode, process.ExitCode is 0 or 28 ? await stdout : $"{await stdout}\n{errors}");
    }

    private sealed record Example(string Command, string? Expected);

    /// <summary>The lines of the README's first ```bash block after the line that holds <paramref name="marker"/>.</summary>
    private static List<string> Block(string marker)
    {
        var lines = File.ReadAllLines(Path.Combine(Repository.Root(), "README.md"));
        int at = Array.FindIndex(lines, l => l.Contains(marker, StringComparison.Ordinal));
        Assert.True(at >= 0, $"README.md has no '{marker}'");
        int open = Array.FindIndex(lines, Math.Max(0, at - 1), l => l.StartsWith("```bash", StringComparison.Ordinal));
        int close = Array.FindIndex(lines, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));
        return [.. lines[(open + 1)..close]];
    }

    /// <summary>
    /// The commands of a block, each with the answer the README shows after it (<c># → …</c>). A command goes on over
    /// lines ending in a backslash and over lines inside a single-quoted string; other comments are prose.
    /// </summary>
    private static List<Example> Examples(List<string> block)
    {
        var examples = new List<Example>();
        var command = new StringBuilder();
        foreach (string line in block)
        {
            if (command.Length > 0)
            {
                command.Append('\n').Append(line);
                if (!Continues(command.ToString()))
                {
                    examples.Add(new Example(command.ToString(), null));
                    command.Clear();
                }
                continue;
            }
            string trimmed = line.Trim();
            if (trimmed.StartsWith("# → ", StringComparison.Ordinal))
            {
                examples[^1] = examples[^1] with { Expected = trimmed["# → ".Length..] };
            }
            else if (trimmed.Length > 0 && !trimmed.StartsWith('#'))
            {
                command.Append(TrimComment(line));
                if (!Continues(command.ToString()))
                {
                    examples.Add(new Example(command.ToString(), null));
                    command.Clear();
                }
            }
        }
        return examples;
    }

    private static bool Continues(string command) => command.EndsWith('\\') || command.Count(c => c == '\'') % 2 == 1;

    /// <summary>A command line without its trailing comment (<c>  # …</c> outside quotes).</summary>
    private static string TrimComment(string line)
    {
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            quoted ^= line[i] == '\'';
            if (!quoted && line[i] == '#' && i > 0 && line[i - 1] == ' ')
            {
                return line[..i].TrimEnd();
            }
        }
        return line;
    }

    private static Dictionary<string, string?> ComposeEnvironment()
    {
        var lines = File.ReadAllLines(Path.Combine(Repository.Root(), "docker", "compose.yaml"));
        int at = Array.FindIndex(lines, l => l.Trim() == "environment:");
        int indent = lines[at + 1].Length - lines[at + 1].TrimStart().Length;
        var environment = new Dictionary<string, string?>();
        foreach (string line in lines.Skip(at + 1).TakeWhile(l => l.Length - l.TrimStart().Length == indent && l.Contains(':', StringComparison.Ordinal)))
        {
            var (key, value) = (line[..line.IndexOf(':', StringComparison.Ordinal)].Trim(), line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim().Trim('"'));
            environment[key] = value;
        }
        return environment;
    }
}
