using System.Globalization;
using System.Text;
using Gateway.Log.Device;
using Gateway.Storage;

namespace Gateway.Log;

/// <summary>
/// The page size a partition's log was made with (<c>log.layout</c> in its folder). A FasterLog's page size is fixed
/// for its life: an entry never crosses a page boundary and the end of a page is skipped as padding, so a log read
/// with other pages than it was written with is misread. The store's <see cref="LogStoreOptions.PageSizeBits"/> is the
/// page of the partitions it makes; a partition keeps its own. Partitions made before the file existed have none and
/// were made with the store's page size then: <see cref="LogStoreOptions.LegacyPageSizeBits"/> (4 MiB, the default then).
/// </summary>
internal static class LogLayout
{
    public const string FileName = "log.layout";

    /// <summary>The default page size (log2) of partitions without a layout file (<see cref="LogStoreOptions.LegacyPageSizeBits"/>).</summary>
    public const int LegacyPageSizeBits = 22;

    private const string Key = "page-size-bits=";

    /// <summary>
    /// The partition's page size: written for a new partition (<paramref name="fresh"/>, with the store's), read for
    /// an existing one. Throws <see cref="LogCorruptedException"/> when the file is there and does not say.
    /// </summary>
    public static int PageSizeBits(string directory, bool fresh, int storePageSizeBits, int legacyPageSizeBits)
    {
        string path = Path.Combine(directory, FileName);
        if (fresh)
        {
            // Durable before the partition's first commit record, which names addresses in these pages.
            AtomicFile.Write(path, Encoding.ASCII.GetBytes(Key + storePageSizeBits.ToString(CultureInfo.InvariantCulture) + "\n"));
            return storePageSizeBits;
        }
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.ASCII);
        }
        catch (FileNotFoundException)
        {
            return legacyPageSizeBits;
        }
        if (text.StartsWith(Key, StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(Key.Length).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int bits)
            && bits is >= 12 and <= 30)
        {
            return bits;
        }
        throw new LogCorruptedException($"{path} does not say the log's page size (\"{Key}N\", N between 12 and 30).");
    }
}
