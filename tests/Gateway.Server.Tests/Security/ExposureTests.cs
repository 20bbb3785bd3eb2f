using System.Net;
using System.Security.Cryptography;
using System.Text;
using Gateway.Server.Security;

namespace Gateway.Server.Tests.Security;

/// <summary>
/// Safe by default, decided on what the server really bound: a URL whose text looks like loopback but that makes
/// Kestrel listen on every interface is refused (exit 2) like an honest 0.0.0.0; the addresses the environment gives
/// (<c>ASPNETCORE_URLS</c>, <c>ASPNETCORE_HTTP_PORTS</c>) are honoured, not overridden by the shipped settings; and
/// every spelling of the query credential that authenticates is redacted from the logs.
/// </summary>
public sealed class ExposureTests : IDisposable
{
    private readonly TempDirectory _dataDirectory = new("gateway-exposure-tests", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
    }

    [Theory]
    [InlineData("--urls=http://localhost:0:0")]
    [InlineData("--urls=http://127.0.0.1:x:0")]
    [InlineData("--urls=http://[::1]x:0")]
    [InlineData("--urls=http://[::1]]:0")]
    [InlineData("--Kestrel:Endpoints:Api:Url=http://localhost:abc:0")]
    public async Task An_address_that_only_reads_as_loopback_is_refused_on_what_was_bound(string setting)
    {
        var (exitCode, output) = await ServerProcess.RunToExitAsync(_dataDirectory.Path, new Dictionary<string, string?>(), defaultUrls: false, setting);
        Assert.True(exitCode == 2, $"exit {exitCode}:\n{output}");
        Assert.Contains("Refusing to serve", output, StringComparison.Ordinal);
        Assert.Contains("[::]", output, StringComparison.Ordinal); // the address Kestrel really bound: every interface
    }

    [Fact]
    public async Task The_environment_s_addresses_are_honoured()
    {
        // ASPNETCORE_URLS picks the address (the shipped appsettings.json no longer overrides it) ...
        await using (var server = await ServerProcess.LaunchAsync(_dataDirectory.Path, new Dictionary<string, string?> { ["ASPNETCORE_URLS"] = "http://127.0.0.1:0" }, defaultUrls: false))
        {
            Assert.Equal("127.0.0.1", server.Address.Host);
            Assert.NotEqual(8080, server.Address.Port);
        }
        // ... and ASPNETCORE_HTTP_PORTS, as container images set it, listens on every interface: refused without credentials.
        var (exitCode, output) = await ServerProcess.RunToExitAsync(_dataDirectory.Path, new Dictionary<string, string?> { ["ASPNETCORE_HTTP_PORTS"] = "0" }, defaultUrls: false);
        Assert.True(exitCode == 2, $"exit {exitCode}:\n{output}");
        Assert.Contains("Refusing", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:5000", true)]
    [InlineData("http://[::1]:5000", true)]
    [InlineData("http://localhost:5000", true)]
    [InlineData("http://unix:/run/gateway.sock", true)]
    [InlineData("http://[::]:5000", false)]
    [InlineData("http://0.0.0.0:5000", false)]
    [InlineData("http://10.1.2.3:5000", false)]
    public void Bound_addresses_are_told_apart(string address, bool loopback) =>
        Assert.Equal(loopback, ExposureCheck.IsLoopback(address));

    [Fact]
    public async Task Every_spelling_of_the_query_credential_that_authenticates_is_redacted()
    {
        const string Key = "k3y-that-must-not-be-logged-7f1c";
        string logFile = Path.Combine(_dataDirectory.Path, "logs", "gateway.log");
        await using var server = await ServerProcess.StartAsync(
            Path.Combine(_dataDirectory.Path, "store"),
            "--Auth:ApiKeys:0:Name=reader", $"--Auth:ApiKeys:0:Hash={Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Key)))}",
            "--Serilog:MinimumLevel:Default=Information",
            "--Serilog:MinimumLevel:Override:Microsoft.AspNetCore.Hosting.Diagnostics=Information",
            "--Serilog:MinimumLevel:Override:Gateway.Server.Requests=Information",
            "--Serilog:WriteTo:1:Name=File", $"--Serilog:WriteTo:1:Args:path={logFile}");
        using (var create = new HttpRequestMessage(HttpMethod.Post, "/v1/topics") { Content = Http.Json("""{"name":"t"}""") })
        {
            create.Headers.Authorization = new("Bearer", Key);
            using var created = await server.Client.SendAsync(create);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        foreach (string parameter in new[] { "access_token", "access%5Ftoken", "%61ccess_token", "ACCESS%5FTOKEN", "Access_Token" })
        {
            using var stream = await server.Client.GetAsync($"/v1/topics/t/events?{parameter}={Key}", HttpCompletionOption.ResponseHeadersRead);
            Assert.True(stream.StatusCode == HttpStatusCode.OK, $"{parameter}: {(int)stream.StatusCode}");
        }
        await server.StopAsync();
        string file = await File.ReadAllTextAsync(logFile);
        Assert.Contains("[redacted]", file, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, file, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, server.Output, StringComparison.Ordinal);
    }
}
