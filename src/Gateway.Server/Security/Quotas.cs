using System.Collections.Concurrent;
using System.Globalization;
using Gateway.Server.Errors;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Security;

/// <summary>
/// The <c>Quotas</c> section: per principal, produce requests/s and bytes/s, and how many long-polls and event
/// streams may be open at once. 0 is unlimited. <see cref="Principals"/> overrides the defaults by principal name.
/// </summary>
public sealed class QuotaOptions : QuotaLimits
{
    public Dictionary<string, QuotaLimits> Principals { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>One principal's limits; unset values take the defaults.</summary>
public class QuotaLimits
{
    public double? ProduceRequestsPerSecond { get; set; }

    public double? ProduceBytesPerSecond { get; set; }

    public int? MaxConcurrentWaits { get; set; }
}

/// <summary>
/// Enforces the quotas with 429 <c>quota_exceeded</c> and <c>Retry-After</c>. Rates are token buckets holding one
/// second of allowance; a request is admitted while its principal's bucket is not in debt and then pays its full
/// cost, so one request larger than a second's allowance is served and the next ones wait it off (written here: the
/// framework's token bucket refuses a request larger than the bucket outright).
/// </summary>
public sealed class Quotas(IOptions<QuotaOptions> options, TimeProvider time)
{
    private readonly QuotaOptions _options = options.Value;
    private readonly ConcurrentDictionary<string, PrincipalState> _states = new(StringComparer.Ordinal);

    /// <summary>Whether any produce rate is limited (else produce skips the quota path).</summary>
    public bool LimitsProduce { get; } = Any(options.Value, l => l.ProduceRequestsPerSecond > 0 || l.ProduceBytesPerSecond > 0);

    /// <summary>Whether any principal's long-polls and streams are capped.</summary>
    public bool LimitsWaits { get; } = Any(options.Value, l => l.MaxConcurrentWaits > 0);

    /// <summary>Admits a produce request of the caller (401 without credentials where required, 429 over quota).</summary>
    public static void AdmitProduce(HttpContext context)
    {
        var quotas = context.RequestServices.GetRequiredService<Quotas>();
        if (quotas.LimitsProduce)
        {
            quotas.AdmitProduce(context.RequestServices.GetRequiredService<AccessControl>().PrincipalOf(context), context.Request.ContentLength ?? 0);
        }
    }

    /// <summary>Charges the bytes of a produce body that declared no length, once read.</summary>
    public static void ChargeUndeclaredBytes(HttpContext context, long bytes)
    {
        var quotas = context.RequestServices.GetRequiredService<Quotas>();
        if (quotas.LimitsProduce && context.Request.ContentLength is null)
        {
            quotas.ChargeProduceBytes(context.RequestServices.GetRequiredService<AccessControl>().PrincipalOf(context), bytes);
        }
    }

    /// <summary>Takes a long-poll/stream slot of the caller until disposed (429 when all are in use).</summary>
    public static WaitSlot EnterWait(HttpContext context)
    {
        var quotas = context.RequestServices.GetRequiredService<Quotas>();
        return quotas.LimitsWaits ? quotas.EnterWait(context.RequestServices.GetRequiredService<AccessControl>().PrincipalOf(context)) : default;
    }

    private static bool Any(QuotaOptions options, Func<QuotaLimits, bool> limited) => limited(options) || options.Principals.Values.Any(limited);

    /// <summary>Admits a produce request, charging one request and <paramref name="bytes"/> (the declared length, if any).</summary>
    public void AdmitProduce(string principal, long bytes)
    {
        var state = StateOf(principal);
        if (state.Requests is { } requests && !requests.TryTake(1, minimum: 1, time, out var wait))
        {
            throw Exceeded($"Principal '{principal}' is over its produce request rate.", wait);
        }
        if (state.Bytes is { } budget && !budget.TryTake(bytes, minimum: 0, time, out wait))
        {
            throw Exceeded($"Principal '{principal}' is over its produce byte rate.", wait);
        }
    }

    /// <summary>
    /// Charges a produce request that cannot be refused (Kafka's: a broker over quota delays, it does not refuse):
    /// one request and its bytes; returns how long its answer should wait until the principal is out of debt.
    /// </summary>
    public TimeSpan ChargeProduceDelay(string principal, long bytes)
    {
        var state = StateOf(principal);
        var wait = state.Requests?.ChargeAndWait(1, time) ?? TimeSpan.Zero;
        var byteWait = state.Bytes?.ChargeAndWait(bytes, time) ?? TimeSpan.Zero;
        return byteWait > wait ? byteWait : wait;
    }

    /// <summary>Charges bytes learnt only after reading a body without a declared length.</summary>
    public void ChargeProduceBytes(string principal, long bytes) => StateOf(principal).Bytes?.Charge(bytes, time);

    /// <summary>Takes one of the principal's long-poll/stream slots until the returned slot is disposed.</summary>
    public WaitSlot EnterWait(string principal) => TryEnterWait(principal, out var slot)
        ? slot
        : throw Exceeded($"Principal '{principal}' has {StateOf(principal).MaxWaits} long-polls and streams open, its limit.", TimeSpan.FromSeconds(1));

    /// <summary>
    /// Takes one of the principal's long-poll/stream slots (a default slot when it has no limit); false when it has
    /// them all open already. HTTP's long-polls and streams and Kafka's fetch waits share them.
    /// </summary>
    public bool TryEnterWait(string principal, out WaitSlot slot)
    {
        var state = StateOf(principal);
        slot = default;
        if (state.MaxWaits <= 0)
        {
            return true;
        }
        if (Interlocked.Increment(ref state.Waits) > state.MaxWaits)
        {
            Interlocked.Decrement(ref state.Waits);
            return false;
        }
        slot = new WaitSlot(state);
        return true;
    }

    private PrincipalState StateOf(string principal) => _states.GetOrAdd(principal, name =>
    {
        var own = _options.Principals.GetValueOrDefault(name);
        double requests = own?.ProduceRequestsPerSecond ?? _options.ProduceRequestsPerSecond ?? 0;
        double bytes = own?.ProduceBytesPerSecond ?? _options.ProduceBytesPerSecond ?? 0;
        int waits = own?.MaxConcurrentWaits ?? _options.MaxConcurrentWaits ?? 0;
        return new PrincipalState(requests > 0 ? new DebtBucket(requests, time) : null, bytes > 0 ? new DebtBucket(bytes, time) : null, waits);
    });

    private static ApiException Exceeded(string detail, TimeSpan wait) => new(
        StatusCodes.Status429TooManyRequests, "quota_exceeded", detail,
        headers: new Dictionary<string, string> { ["Retry-After"] = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture) });

    /// <summary>One open long-poll or stream of a principal.</summary>
    public readonly struct WaitSlot : IDisposable
    {
        private readonly PrincipalState? _state;

        internal WaitSlot(PrincipalState state) => _state = state;

        /// <summary>Whether this holds a slot (a default slot holds none).</summary>
        public bool Held => _state is not null;

        public void Dispose()
        {
            if (_state is not null)
            {
                Interlocked.Decrement(ref _state.Waits);
            }
        }
    }

    internal sealed class PrincipalState(DebtBucket? requests, DebtBucket? bytes, int maxWaits)
    {
        public DebtBucket? Requests { get; } = requests;

        public DebtBucket? Bytes { get; } = bytes;

        public int MaxWaits { get; } = maxWaits;

#pragma warning disable CA1051 // a field, for Interlocked
        public int Waits;
#pragma warning restore CA1051
    }

    /// <summary>A token bucket of one second's allowance that may go into debt.</summary>
    internal sealed class DebtBucket(double rate, TimeProvider time)
    {
        private readonly Lock _lock = new();
        private readonly double _rate = rate;
        private double _tokens = rate;
        private long _last = time.GetTimestamp();

        /// <summary>Takes <paramref name="cost"/> if the balance is at least <paramref name="minimum"/> (the balance may then go negative).</summary>
        public bool TryTake(double cost, double minimum, TimeProvider clock, out TimeSpan wait)
        {
            lock (_lock)
            {
                Refill(clock);
                if (_tokens < minimum)
                {
                    wait = TimeSpan.FromSeconds((minimum - _tokens) / _rate);
                    return false;
                }
                _tokens -= cost;
                wait = TimeSpan.Zero;
                return true;
            }
        }

        /// <summary>Takes <paramref name="cost"/> whatever the balance; returns how long until the balance is back at 0.</summary>
        public TimeSpan ChargeAndWait(double cost, TimeProvider clock)
        {
            lock (_lock)
            {
                Refill(clock);
                _tokens -= cost;
                return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / _rate);
            }
        }

        public void Charge(double cost, TimeProvider clock) => ChargeAndWait(cost, clock);

        private void Refill(TimeProvider clock)
        {
            long now = clock.GetTimestamp();
            _tokens = Math.Min(_rate, _tokens + clock.GetElapsedTime(_last, now).TotalSeconds * _rate);
            _last = now;
        }
    }
}
