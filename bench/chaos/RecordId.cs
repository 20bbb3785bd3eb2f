using System.Globalization;

namespace Gateway.Chaos;

/// <summary>
/// A record's identity, carried as its value: <c>p{producer}-{sequence}</c>. The sequence counts the producer's records
/// in send order, so it also tells the checker in which order the producer sent them.
/// </summary>
internal static class RecordId
{
    private const int SequenceBits = 40;

    public static long Of(int producer, long sequence) => ((long)producer << SequenceBits) | sequence;

    public static int Producer(long id) => (int)(id >> SequenceBits);

    public static long Sequence(long id) => id & ((1L << SequenceBits) - 1);

    public static string Format(int producer, long sequence) =>
        string.Create(CultureInfo.InvariantCulture, $"p{producer}-{sequence}");

    public static bool TryParse(ReadOnlySpan<char> value, out long id)
    {
        id = -1;
        int dash = value.IndexOf('-');
        if (value.Length < 4 || value[0] != 'p' || dash < 2
            || !int.TryParse(value[1..dash], NumberStyles.None, CultureInfo.InvariantCulture, out int producer)
            || !long.TryParse(value[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out long sequence)
            || producer >= 1 << 20 || sequence >= 1L << SequenceBits)
        {
            return false;
        }
        id = Of(producer, sequence);
        return true;
    }
}
