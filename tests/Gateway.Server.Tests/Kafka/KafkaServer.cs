using System.Net;
using System.Net.Sockets;

namespace Gateway.Server.Tests.Kafka;

/// <summary>A real server process with its Kafka listener on a free loopback port, and its own data folder.</summary>
internal sealed class KafkaServer : IAsyncDisposable
{
    private readonly TempDirectory _data;

    private KafkaServer(TempDirectory data, ServerProcess process, int kafkaPort)
    {
        _data = data;
        Process = process;
        Bootstrap = $"127.0.0.1:{kafkaPort}";
    }

    public ServerProcess Process { get; }

    public HttpClient Http => Process.Client;

    /// <summary>host:port for Kafka clients' <c>bootstrap.servers</c>.</summary>
    public string Bootstrap { get; }

    public static async Task<KafkaServer> StartAsync(params string[] settings)
    {
        int port = FreePort();
        var data = new TempDirectory("gateway-kafka-tests", create: false);
        try
        {
            var process = await ServerProcess.StartAsync(data.Path, [$"--KafkaProtocol:Listen=127.0.0.1:{port}", .. settings]);
            return new KafkaServer(data, process, port);
        }
        catch
        {
            data.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        _data.Dispose();
    }

    /// <summary>A port free now (the server binds it at once; a test that loses the race fails loudly, never silently).</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
