using System.Text.RegularExpressions;

namespace Gateway.Server.Tests.Errors;

/// <summary>Every error code the server's code can answer is in the README's table of codes, so clients can rely on the list.</summary>
public sealed partial class ErrorCodeDocsTests
{
    [Fact]
    public void Every_code_in_the_source_is_in_the_readme()
    {
        string root = Repository.Root();
        var sources = Directory.EnumerateFiles(Path.Combine(root, "src", "Gateway.Server"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(f => Path.GetFileName(f) != "OpenApiContract.cs"); // its examples repeat codes, not new ones
        var codes = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string file in sources)
        {
            string text = File.ReadAllText(file);
            foreach (Match match in CodeInSource().Matches(text))
            {
                codes.Add(match.Groups["code"].Value);
            }
        }
        Assert.Contains("topic_not_found", codes); // the patterns still find codes
        Assert.Contains("invalid_request", codes);

        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        int table = readme.IndexOf("| status | codes |", StringComparison.Ordinal);
        Assert.True(table >= 0, "README.md has no table of error codes");
        int end = readme.IndexOf("\n\n", table, StringComparison.Ordinal);
        var documented = CodeInTable().Matches(readme[table..end]).Select(m => m.Groups["code"].Value).ToHashSet(StringComparer.Ordinal);
        var missing = codes.Where(c => !documented.Contains(c)).ToList();
        Assert.True(missing.Count == 0, $"codes the server answers that README.md's table lacks: {string.Join(", ", missing)} (found {string.Join(", ", codes)})");
    }

    // BadRequest("code", …), Unauthorized("code", …), new ApiException(StatusCodes.Status4xx…, "code", …), the
    // mapping's (404, "code", …) tuples, the status pages' 404 => "code" arms and the HTTP layer's fallbacks.
    [GeneratedRegex("""(?:(?:BadRequest|Unauthorized)\(|Status\d{3}\w*,\s*|\(\d{3},\s*|\d{3} => )"(?<code>[a-z][a-z0-9_]*)"|(?:>= \d{3} => |_ => |\? |: )"(?<code>[a-z]+_[a-z0-9_]+)"(?=[,)\s;])""")]
    private static partial Regex CodeInSource();

    [GeneratedRegex("`(?<code>[a-z][a-z0-9_]*)`")]
    private static partial Regex CodeInTable();
}
