using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Server.Tests;

/// <summary>The real server in-process, on its own temporary data folder, removed afterwards.</summary>
public sealed class GatewayFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly TimeProvider? _time;
    private readonly bool _ownsData;

    /// <param name="settings">configuration to set</param>
    /// <param name="time">the clock, when the test controls it</param>
    /// <param name="dataDirectory">an existing data folder to reopen (kept afterwards), else a new one (removed)</param>
    public GatewayFactory(Dictionary<string, string?>? settings = null, TimeProvider? time = null, string? dataDirectory = null)
    {
        _ownsData = dataDirectory is null;
        DataDirectory = dataDirectory ?? Path.Combine(Path.GetTempPath(), "gateway-server-tests", Guid.NewGuid().ToString("N"));
        _settings = settings ?? [];
        _time = time;
    }

    public string DataDirectory { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Storage:DataDirectory", DataDirectory);
        builder.UseSetting("Storage:PageSizeBits", "20");
        builder.UseSetting("Storage:MemorySizeBits", "21");
        builder.UseSetting("Storage:TopicDefaults:MaxRecordBytes", "262144");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
        if (_time is not null)
        {
            builder.ConfigureTestServices(services => services.AddSingleton(_time));
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_ownsData && Directory.Exists(DataDirectory))
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
    }
}
