namespace Gateway.Log;

/// <summary>Where and how the log store keeps its data. Bound from the <c>Storage</c> configuration section.</summary>
public sealed class LogStoreOptions
{
    /// <summary>Folder that holds everything the store keeps.</summary>
    public string DataDirectory { get; set; } = "./data";

    /// <summary>log2 of the FasterLog page size. One append (one request's records for one partition) must fit in half a page.</summary>
    public int PageSizeBits { get; set; } = 22;

    /// <summary>log2 of the memory each partition's log keeps (at least two pages).</summary>
    public int MemorySizeBits { get; set; } = 23;

    /// <summary>log2 of the segment file size; retention frees disk a whole segment at a time.</summary>
    public int SegmentSizeBits { get; set; } = 28;

    /// <summary>Longest time an <c>acks=memory</c> append waits before a background commit persists it and makes it visible.</summary>
    public int FlushIntervalMs { get; set; } = 2;

    /// <summary>Bytes of log between two entries of the sparse offset index.</summary>
    public int IndexIntervalBytes { get; set; } = 4096;

    /// <summary>Defaults for topics created without these settings.</summary>
    public TopicConfig TopicDefaults { get; set; } = new();

    /// <summary>Largest batch one append may write: half a page.</summary>
    public int MaxBatchBytes => (1 << PageSizeBits) / 2;
}
