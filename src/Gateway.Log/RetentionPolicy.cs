namespace Gateway.Log;

/// <summary>A place a partition can be cut: every record below <see cref="Offset"/> (at <see cref="Address"/>) has a timestamp ≤ <see cref="MaxTimestampBefore"/>.</summary>
public readonly record struct RetentionPoint(long Offset, long Address, long MaxTimestampBefore);

/// <summary>
/// Kafka's retention decision, as a pure function: the offset before which records may go, by time
/// (<c>retentionMs</c>: everything before it is older) and by size (<c>retentionBytes</c>: what is left fits).
/// It only cuts at points where every record below is removable, so it never removes a record retention keeps.
/// </summary>
public static class RetentionPolicy
{
    /// <param name="points">cut points in offset order (the sparse index, and the end of the log)</param>
    /// <param name="tailAddress">the log's end address, to measure what a cut leaves</param>
    /// <param name="now">epoch milliseconds</param>
    /// <param name="retentionMs">-1 for no time limit</param>
    /// <param name="retentionBytes">-1 for no size limit</param>
    /// <returns>the new begin offset, or null when nothing may go</returns>
    public static long? CutOffset(IReadOnlyList<RetentionPoint> points, long tailAddress, long now, long retentionMs, long retentionBytes)
    {
        long? cut = null;
        if (retentionMs > 0)
        {
            long oldestKept = now - retentionMs;
            foreach (var point in points)
            {
                if (point.MaxTimestampBefore < oldestKept)
                {
                    cut = Math.Max(cut ?? point.Offset, point.Offset);
                }
                else
                {
                    break; // the bound is a running maximum: once a point fails, every later one fails too
                }
            }
        }
        if (retentionBytes > 0)
        {
            foreach (var point in points)
            {
                if (tailAddress - point.Address <= retentionBytes)
                {
                    cut = Math.Max(cut ?? point.Offset, point.Offset);
                    break; // the first point that leaves little enough cuts the least
                }
            }
        }
        return cut;
    }
}
