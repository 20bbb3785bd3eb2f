using System.Text.RegularExpressions;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// The HTTP layer over the storage port: outside the one composition folder (<c>src/Gateway.Server/Storage/</c>,
/// which picks the backend and hosts the embedded one), no server source names the embedded engines (Gateway.Log,
/// Gateway.Groups) or their libraries (FASTER, LiteDB); and a backend the composition does not know refuses the start.
/// </summary>
public sealed partial class StoragePortTests : IDisposable
{
    private static readonly string[] s_composition = ["EmbeddedStorage.cs", "RetentionService.cs", "StorageComposition.cs", "StorageOptionsValidation.cs"];
    private readonly TempDirectory _dataDirectory = new("gateway-port-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [Fact]
    public void Only_the_composition_names_the_embedded_engines()
    {
        string server = Path.Combine(Repository.Root(), "src", "Gateway.Server");
        var offenders = Directory.EnumerateFiles(server, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(f => !(Path.GetFileName(Path.GetDirectoryName(f)) == "Storage" && s_composition.Contains(Path.GetFileName(f))))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: Path.GetRelativePath(server, f), Line: i + 1, Text: line)))
            .Where(l => EngineName().IsMatch(l.Text))
            .Select(l => $"{l.File}:{l.Line}: {l.Text.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, "outside the composition, the server names an engine:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public async Task An_unknown_backend_refuses_the_start()
    {
        var (exitCode, output) = await ServerProcess.RunToExitAsync(_dataDirectory.Path, new Dictionary<string, string?>(), defaultUrls: true, "--Storage:Backend=cassandra");
        Assert.True(exitCode == 2, $"exit {exitCode}:\n{output}");
        Assert.Contains("Storage:Backend is 'cassandra'; the backends are: embedded", output, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\bGateway\.(Log|Groups)\b|\bFASTER\b|\bLiteDB\b|\b(LogStore|TopicLog|PartitionLog|GroupCoordinator|FasterLog)\b")]
    private static partial Regex EngineName();
}
