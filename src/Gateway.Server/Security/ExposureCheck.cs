using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Security;

/// <summary>
/// The safe-by-default rule decided on what the server really bound, not on the configured text: without credentials
/// (and without <c>Auth:AllowAnonymous</c>) every address Kestrel listens on must be loopback. A URL such as
/// <c>http://localhost:8080:8080</c> reads as localhost to a careless parser but makes Kestrel listen on every
/// interface; its bound address (<c>http://[::]:8080</c>) says so. Until the server has started, every request
/// checks again (an endpoint bound later could be exposed); once it has started, the answer is kept.
/// </summary>
public sealed class ExposureCheck(IServer server, IOptions<AuthOptions> auth, IHostApplicationLifetime lifetime)
{
    private volatile string? _refusal;
    private volatile bool _safe;

    /// <summary>Whether the server was found exposed and is stopping because of it.</summary>
    public bool Refused => _refusal is not null;

    /// <summary>Why the server must not serve, or null while nothing it bound is exposed.</summary>
    public string? Check()
    {
        if (_safe || _refusal is not null)
        {
            return _refusal;
        }
        var options = auth.Value;
        if (options.CredentialsConfigured || options.AllowAnonymous)
        {
            _safe = true;
            return null;
        }
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var exposed = addresses.Where(a => !IsLoopback(a)).ToList();
        if (exposed.Count > 0)
        {
            _refusal =
                $"Refusing to serve: no credentials are configured (Auth:ApiKeys, Auth:Jwt) and the server listens on {string.Join(", ", exposed)}, " +
                "reachable from other machines, with every right given to anyone. Configure credentials, listen on loopback only " +
                "(e.g. --urls http://127.0.0.1:8080), or set Auth:AllowAnonymous=true to accept anonymous requests knowingly.";
            lifetime.StopApplication();
            return _refusal;
        }
        // Before the start has finished another endpoint may still bind: keep checking until then.
        _safe = addresses.Count > 0 && lifetime.ApplicationStarted.IsCancellationRequested;
        return null;
    }

    /// <summary>Whether a bound address (as Kestrel reports it: <c>http://127.0.0.1:5000</c>, <c>http://[::]:5000</c>, <c>http://unix:/…</c>) is loopback only.</summary>
    public static bool IsLoopback(string address)
    {
        var binding = BindingAddress.Parse(address);
        if (binding.IsUnixPipe || binding.IsNamedPipe)
        {
            return true; // a local socket file or pipe, not a network address
        }
        string host = binding.Host.Trim('[', ']');
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }
}
