namespace Gateway.Testing;

/// <summary>A folder of its own for one test (or one test class), under the system's temp folder; removed on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    /// <param name="prefix">the folder the test's folders gather in, named for the tests (e.g. <c>gateway-log-tests</c>)</param>
    /// <param name="create">create the folder now; else only its path is chosen (a server creates it)</param>
    public TempDirectory(string prefix = "gateway-tests", bool create = true)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), prefix, Guid.NewGuid().ToString("N"));
        if (create)
        {
            Directory.CreateDirectory(Path);
        }
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Gone already, or still held (a mount, a process that has not let go): the temp folder's own cleanup takes it.
        }
    }
}
