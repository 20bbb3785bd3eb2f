using System.Numerics;

namespace Gateway.Bench.SseLoad;

/// <summary>
/// Latencies in microseconds, log-linear buckets (64 per power of two: within ~1.6 %), thread-safe without locks.
/// </summary>
internal sealed class Histogram
{
    private const int SubBuckets = 64; // 2^6
    private readonly long[] _counts = new long[SubBuckets + (57 * SubBuckets)];
    private long _count;
    private long _max;

    public long Count => Interlocked.Read(ref _count);

    public long MaxMicros => Interlocked.Read(ref _max);

    public void Record(long micros)
    {
        if (micros < 0)
        {
            micros = 0;
        }
        Interlocked.Increment(ref _counts[Index(micros)]);
        Interlocked.Increment(ref _count);
        long max = Interlocked.Read(ref _max);
        while (micros > max)
        {
            long seen = Interlocked.CompareExchange(ref _max, micros, max);
            if (seen == max)
            {
                break;
            }
            max = seen;
        }
    }

    /// <summary>The value below which p % of the samples lie, in milliseconds; NaN without samples.</summary>
    public double PercentileMs(double p)
    {
        long count = Count;
        if (count == 0)
        {
            return double.NaN;
        }
        long rank = Math.Max(1, (long)Math.Ceiling(p / 100.0 * count));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Min(Middle(i), MaxMicros) / 1000.0;
            }
        }
        return MaxMicros / 1000.0;
    }

    private static int Index(long v)
    {
        if (v < SubBuckets)
        {
            return (int)v;
        }
        int e = 63 - BitOperations.LeadingZeroCount((ulong)v); // >= 6
        int sub = (int)(v >> (e - 6)) & (SubBuckets - 1);
        return SubBuckets + ((e - 6) * SubBuckets) + sub;
    }

    private static long Middle(int index)
    {
        if (index < SubBuckets)
        {
            return index;
        }
        int e = ((index - SubBuckets) / SubBuckets) + 6;
        int sub = (index - SubBuckets) % SubBuckets;
        long low = (long)(SubBuckets + sub) << (e - 6);
        return low + ((1L << (e - 6)) / 2);
    }
}
