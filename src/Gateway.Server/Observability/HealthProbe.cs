namespace Gateway.Server.Observability;

/// <summary>
/// <c>Gateway.Server --health-check [url]</c>: asks a running server whether it is ready and exits 0 or 1, so a
/// container health check needs no curl in the image. The URL defaults to <c>GATEWAY_HEALTH_URL</c>, else port 8080.
/// </summary>
public static class HealthProbe
{
    public const string Flag = "--health-check";

    public static async Task<int> RunAsync(string[] args)
    {
        string url = args.Length > 1 ? args[1]
            : Environment.GetEnvironmentVariable("GATEWAY_HEALTH_URL") ?? "http://127.0.0.1:8080/health/ready";
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await client.GetAsync(new Uri(url));
            await Console.Out.WriteLineAsync($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or UriFormatException)
        {
            await Console.Error.WriteLineAsync($"{url}: {ex.Message}");
            return 1;
        }
    }
}
