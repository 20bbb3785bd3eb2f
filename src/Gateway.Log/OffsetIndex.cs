namespace Gateway.Log;

/// <summary>
/// Sparse map from offsets and timestamps to log addresses, like Kafka's <c>.index</c> and <c>.timeindex</c>:
/// one entry per <c>interval</c> bytes of log, so a lookup is a binary search followed by a short scan.
/// Entries are added in address order; all members are thread-safe.
/// </summary>
internal sealed class OffsetIndex(int intervalBytes)
{
    private readonly Lock _lock = new();
    private readonly List<Entry> _entries = [];
    private long _lastIndexedAddress;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Notes a batch's position if the log has grown by an interval since the last entry.</summary>
    /// <param name="baseOffset">first offset of the batch</param>
    /// <param name="address">log address of the batch</param>
    /// <param name="maxTimestampBefore">largest timestamp of every batch before this one</param>
    public void OnAppend(long baseOffset, long address, long maxTimestampBefore)
    {
        lock (_lock)
        {
            if (_entries.Count > 0 && address - _lastIndexedAddress < intervalBytes)
            {
                return;
            }
            _entries.Add(new Entry(baseOffset, address, maxTimestampBefore));
            _lastIndexedAddress = address;
        }
    }

    /// <summary>Address of the last indexed batch that starts at or before <paramref name="offset"/>, else <paramref name="fallback"/>.</summary>
    public long FloorAddress(long offset, long fallback)
    {
        lock (_lock)
        {
            int lo = 0, hi = _entries.Count - 1, found = -1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_entries[mid].BaseOffset <= offset)
                {
                    found = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }
            return found < 0 ? fallback : Math.Max(_entries[found].Address, fallback);
        }
    }

    /// <summary>
    /// Address from which a scan finds the first record with timestamp ≥ <paramref name="timestamp"/>: the last entry
    /// before which every timestamp is smaller, else <paramref name="fallback"/>.
    /// </summary>
    public long TimestampFloorAddress(long timestamp, long fallback)
    {
        lock (_lock)
        {
            int lo = 0, hi = _entries.Count - 1, found = -1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_entries[mid].MaxTimestampBefore < timestamp)
                {
                    found = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }
            return found < 0 ? fallback : Math.Max(_entries[found].Address, fallback);
        }
    }

    /// <summary>Every entry as a retention cut point, in offset order.</summary>
    public List<RetentionPoint> Points()
    {
        lock (_lock)
        {
            return [.. _entries.Select(e => new RetentionPoint(e.BaseOffset, e.Address, e.MaxTimestampBefore))];
        }
    }

    /// <summary>
    /// Adds the entries of an index built over the log below this one's first entry (the log under a recovery
    /// checkpoint, verified after the partition opened).
    /// </summary>
    public void Prepend(OffsetIndex lower)
    {
        Entry[] below;
        lock (lower._lock)
        {
            below = [.. lower._entries];
        }
        lock (_lock)
        {
            long limit = _entries.Count > 0 ? _entries[0].Address : long.MaxValue;
            bool wasEmpty = _entries.Count == 0;
            _entries.InsertRange(0, below.Where(e => e.Address < limit));
            if (wasEmpty && _entries.Count > 0)
            {
                _lastIndexedAddress = _entries[^1].Address;
            }
        }
    }

    /// <summary>Drops entries below a new begin address.</summary>
    public void TruncateBefore(long address)
    {
        lock (_lock)
        {
            int keep = _entries.FindIndex(e => e.Address >= address);
            _entries.RemoveRange(0, keep < 0 ? _entries.Count : keep);
        }
    }

    private readonly record struct Entry(long BaseOffset, long Address, long MaxTimestampBefore);
}
