using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Confluent.Kafka;

namespace Gateway.Server.Tests.Kafka;

/// <summary>
/// The Kafka listener with a TLS certificate (<c>KafkaProtocol:Tls:*</c>): librdkafka connects with SASL_SSL and
/// checks the server's certificate against the CA it was given; a client speaking plain Kafka gets nothing.
/// </summary>
public sealed class KafkaTlsTests : IAsyncLifetime
{
    private readonly TempDirectory _files = new();
    private KafkaServer _server = null!;

    private string CertificatePath => Path.Combine(_files.Path, "kafka.crt");

    public async Task InitializeAsync()
    {
        // A self-signed certificate for the address clients are told (127.0.0.1), in PEM files as operators have them.
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=gateway-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        await File.WriteAllTextAsync(CertificatePath, certificate.ExportCertificatePem());
        string keyPath = Path.Combine(_files.Path, "kafka.key");
        await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());

        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("tls-key")));
        _server = await KafkaServer.StartAsync(
            "--Auth:ApiKeys:0:Name=app", $"--Auth:ApiKeys:0:Hash={hash}",
            $"--KafkaProtocol:Tls:CertificatePath={CertificatePath}", $"--KafkaProtocol:Tls:KeyPath={keyPath}");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _files.Dispose();
    }

    private ClientConfig Client() => new()
    {
        BootstrapServers = _server.Bootstrap,
        SecurityProtocol = SecurityProtocol.SaslSsl,
        SslCaLocation = CertificatePath,
        SaslMechanism = SaslMechanism.Plain,
        SaslUsername = "app",
        SaslPassword = "tls-key",
    };

    [Fact]
    public async Task SASL_SSL_clients_produce_and_consume_and_plain_Kafka_gets_no_answer()
    {
        using (var admin = new AdminClientBuilder(Client()).Build())
        {
            await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "secure", NumPartitions = 1, ReplicationFactor = 1 }]);
        }
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig(Client()) { Acks = Acks.All, EnableIdempotence = true }).Build())
        {
            for (int i = 0; i < 3; i++)
            {
                await producer.ProduceAsync("secure", new Message<Null, string> { Value = $"s{i}" });
            }
        }
        var config = new ConsumerConfig(Client()) { GroupId = "secure-readers", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false };
        using (var consumer = new ConsumerBuilder<Ignore, string>(config).Build())
        {
            consumer.Subscribe("secure");
            var values = new List<string>();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (values.Count < 3 && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromSeconds(1)) is { } record)
                {
                    values.Add(record.Message.Value);
                }
            }
            Assert.Equal(["s0", "s1", "s2"], values);
            consumer.Close();
        }

        // A plaintext ApiVersions request is not a TLS ClientHello: the server answers no Kafka frame (at most a TLS
        // alert) and closes.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, int.Parse(_server.Bootstrap.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture));
        var stream = tcp.GetStream();
        await stream.WriteAsync(new byte[] { 0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 255, 255 });
        var answer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int read;
        try
        {
            read = await stream.ReadAsync(answer, timeout.Token);
        }
        catch (IOException)
        {
            read = 0; // reset
        }
        Assert.True(read == 0 || answer[0] == 0x15, $"a plaintext client got {read} bytes starting {answer[0]:x2}");
    }
}
