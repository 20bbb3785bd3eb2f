namespace Gateway.Server.Tests;

/// <summary>The repository the tests were built from: its files (README, scripts, sources) are what some tests check.</summary>
internal static class Repository
{
    /// <summary>The folder holding Gateway.sln, found above the test's output folder.</summary>
    public static string Root()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Gateway.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("Gateway.sln not found above the test folder.");
    }
}
