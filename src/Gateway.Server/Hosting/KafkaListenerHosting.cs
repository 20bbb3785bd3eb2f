using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gateway.KafkaProtocol;
using Gateway.Server.Security;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Hosting;

/// <summary>
/// The Kafka listener in the same Kestrel as HTTP: a second endpoint whose connections go to Kafka's connection
/// handler (<c>KafkaProtocol:Listen</c>, default <c>localhost:9092</c>; empty turns it off). Kestrel ignores the
/// configured URLs once any endpoint is set in code, so while the listener is on, the HTTP addresses (<c>urls</c>,
/// <c>http_ports</c>, <c>https_ports</c>) are bound here as code endpoints too, in the order given, before the Kafka one.
/// With <c>KafkaProtocol:Tls:CertificatePath</c> the Kafka endpoint speaks TLS (Kestrel's own TLS, as HTTPS).
/// </summary>
public static partial class KafkaListenerHosting
{
    /// <summary>The listen address configured (the default when none is), or null when the listener is off.</summary>
    public static string? ListenAddress(IConfiguration configuration)
    {
        // In front of a Kafka cluster the listener is off unless asked for: Kafka clients talk to the cluster itself.
        string? listen = configuration["KafkaProtocol:Listen"] ?? (Storage.StorageComposition.IsKafka(configuration) ? null : new KafkaProtocolOptions().Listen);
        return string.IsNullOrWhiteSpace(listen) ? null : listen.Trim();
    }

    /// <summary>Why the configured listener cannot start, or null.</summary>
    public static string? InvalidReason(IConfiguration configuration)
    {
        if (ListenAddress(configuration) is { } listen && !KafkaListener.TryParseHostPort(listen, out _, out _))
        {
            return $"Refusing to start: KafkaProtocol:Listen is '{listen}'; give host:port (e.g. localhost:9092), or empty to turn the Kafka listener off.";
        }
        if (configuration["KafkaProtocol:Advertise"] is { Length: > 0 } advertise && !KafkaListener.TryParseHostPort(advertise, out _, out _))
        {
            return $"Refusing to start: KafkaProtocol:Advertise is '{advertise}'; give host:port.";
        }
        try
        {
            using var certificate = TlsCertificate(configuration);
            return null;
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return $"Refusing to start: the Kafka listener's TLS certificate (KafkaProtocol:Tls:CertificatePath, KeyPath, Password) cannot be loaded: {ex.Message}";
        }
    }

    /// <summary>
    /// The Kafka listener's certificate when TLS is configured (<c>KafkaProtocol:Tls:CertificatePath</c>: a PEM
    /// certificate with <c>KeyPath</c>, its PEM key, or a PKCS#12 file with <c>Password</c>), else null.
    /// </summary>
    public static X509Certificate2? TlsCertificate(IConfiguration configuration)
    {
        string? path = configuration["KafkaProtocol:Tls:CertificatePath"];
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }
        string? key = configuration["KafkaProtocol:Tls:KeyPath"];
        string? password = configuration["KafkaProtocol:Tls:Password"];
        if (!string.IsNullOrWhiteSpace(key))
        {
            return string.IsNullOrEmpty(password)
                ? X509Certificate2.CreateFromPemFile(path, key)
                : X509Certificate2.CreateFromEncryptedPemFile(path, password, key);
        }
        return X509CertificateLoader.LoadPkcs12FromFile(path, password);
    }

    public static WebApplicationBuilder AddKafkaListener(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<KafkaProtocolOptions>().BindConfiguration("KafkaProtocol")
            .Configure<IOptions<ApiLimits>>((kafka, limits) => kafka.MaxPartitions = limits.Value.MaxPartitions);
        builder.Services.AddSingleton<KafkaBroker>();
        builder.Services.AddSingleton<Gateway.KafkaProtocol.Groups.KafkaGroupCoordinator>();
        builder.Services.AddSingleton<ITopicEvents>(sp => sp.GetRequiredService<Topics.TopicEvents>());
        builder.Services.AddSingleton<IKafkaSecurity, KafkaSecurity>();
        if (ListenAddress(builder.Configuration) is not { } listen)
        {
            return builder;
        }
        if (!KafkaListener.TryParseHostPort(listen, out string host, out int port))
        {
            return builder; // refused before the build (InvalidReason)
        }
        string[] urls = (builder.Configuration["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string? httpPorts = string.IsNullOrEmpty(builder.Configuration["urls"]) ? builder.Configuration["http_ports"] : null;
        string? httpsPorts = string.IsNullOrEmpty(builder.Configuration["urls"]) ? builder.Configuration["https_ports"] : null;
        // Bound below instead; left set, Kestrel would warn that it overrides them.
        builder.WebHost.UseSetting("urls", null);
        builder.WebHost.UseSetting("http_ports", null);
        builder.WebHost.UseSetting("https_ports", null);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (string url in urls)
            {
                var address = BindingAddress.Parse(url);
                bool https = address.Scheme.Equals("https", StringComparison.OrdinalIgnoreCase);
                Bind(kestrel, address.Host, address.Port, options =>
                {
                    if (https)
                    {
                        options.UseHttps();
                    }
                });
            }
            foreach (int p in Ports(httpPorts))
            {
                kestrel.ListenAnyIP(p);
            }
            foreach (int p in Ports(httpsPorts))
            {
                kestrel.ListenAnyIP(p, options => options.UseHttps());
            }
            var certificate = TlsCertificate(builder.Configuration);
            Bind(kestrel, host, port, options =>
            {
                if (certificate is not null)
                {
                    // TLS first, then Kafka's protocol inside it: clients connect with security.protocol SSL or SASL_SSL.
                    options.UseHttps(certificate);
                }
                options.UseConnectionHandler<KafkaConnectionHandler>();
            });
        });
        return builder;
    }

    private static void Bind(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, string host, int port, Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions> configure)
    {
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            if (port == 0)
            {
                kestrel.Listen(IPAddress.Loopback, 0, configure); // Kestrel takes no dynamic port on "localhost"
            }
            else
            {
                kestrel.ListenLocalhost(port, configure);
            }
        }
        else if (host is "*" or "+" or "0.0.0.0" or "[::]" or "::")
        {
            kestrel.ListenAnyIP(port, configure);
        }
        else if (IPAddress.TryParse(host.Trim('[', ']'), out var ip))
        {
            kestrel.Listen(ip, port, configure);
        }
        else
        {
            // A host name: Kestrel listens on every interface for it, as it does for such a URL.
            kestrel.ListenAnyIP(port, configure);
        }
    }

    private static IEnumerable<int> Ports(string? list) =>
        (list ?? "").Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture));
}
