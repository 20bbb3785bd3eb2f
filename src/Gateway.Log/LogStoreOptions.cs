using Gateway.Storage;

namespace Gateway.Log;

/// <summary>Where and how the log store keeps its data. Bound from the <c>Storage</c> configuration section.</summary>
public sealed class LogStoreOptions
{
    /// <summary>Folder that holds everything the store keeps.</summary>
    public string DataDirectory { get; set; } = "./data";

    /// <summary>
    /// log2 of the FasterLog page size of the partitions the store makes (each keeps the one it was made with:
    /// <see cref="LogLayout"/>). One append (one request's records for one partition) must fit in a page.
    /// </summary>
    public int PageSizeBits { get; set; } = 21;

    /// <summary>
    /// log2 of the page size of partitions made before each partition recorded its own (<c>log.layout</c>): the
    /// <see cref="PageSizeBits"/> the store had then, 22 (4 MiB) unless it was configured otherwise.
    /// </summary>
    public int LegacyPageSizeBits { get; set; } = LogLayout.LegacyPageSizeBits;

    /// <summary>
    /// log2 of the memory a partition's log may keep with pages of <see cref="PageSizeBits"/> (at least two pages;
    /// four let appends continue while pages flush). A log allocates two pages when it opens and the others only as
    /// its tail moves on; a partition made with other pages keeps as many pages of its own size.
    /// </summary>
    public int MemorySizeBits { get; set; } = 23;

    /// <summary>log2 of the segment file size; retention frees disk a whole segment at a time.</summary>
    public int SegmentSizeBits { get; set; } = 28;

    /// <summary>
    /// Whether log data stays in the operating system's page cache once it is on disk. Off (the default), writes
    /// bypass the page cache (<c>O_DIRECT</c>; where the file system refuses that, the pages of each write are
    /// dropped once it is durable), so the page cache does not grow with the log: the newest data is read from the
    /// log's own memory, older data from disk (and the pages a read brings in stay cached). Where copying into the
    /// page cache costs the writer dearly — on a VM whose host backs guest memory lazily every new cached page is a
    /// host fault, and the copy was the largest cost of large produce requests (figures: docs/storage.md) — off is
    /// the better choice; on keeps written data cached for readers that lag behind the log's memory.
    /// </summary>
    public bool CacheWrittenData { get; set; }

    /// <summary>
    /// Whether the managed heap asks Linux for transparent huge pages while partitions open (at start and when a
    /// topic is created), where Linux grants them on request (<c>madvise</c>): each partition's log allocates and
    /// clears page buffers then (8–16 MiB with the defaults), and where page faults are expensive, as in a VM, one
    /// fault per 2 MiB instead of one per 4 KiB shortens the opening (figures: docs/storage.md). Off leaves the heap
    /// as the runtime maps it.
    /// </summary>
    public bool HugePages { get; set; } = true;

    /// <summary>
    /// Whether the partitions' log writes are made durable by one write-ahead journal for the whole store (one write and
    /// one sync per commit round, however many partitions it covers) instead of each partition's own synced writes
    /// (one per partition per round). See <see cref="Device.WriteJournal"/>.
    /// </summary>
    public bool WriteJournal { get; set; } = true;

    /// <summary>
    /// Commit rounds covering more partitions than this on average switch log writes to the journal; fewer than half as
    /// many switch them back to each partition's own synced writes. 0: always the journal.
    /// </summary>
    public double JournalAbovePartitions { get; set; } = 3;

    /// <summary>How large a journal file grows before the files it describes are synced and it is removed.</summary>
    public long JournalRotateBytes { get; set; } = 64L << 20;

    /// <summary>
    /// How long a partition stays unused before its log closes (its pages, 2^PageSizeBits bytes each, are most of what
    /// an open partition costs); the next use opens it again, reading only its commit record and tail page. 0 keeps
    /// every log open.
    /// </summary>
    public int PartitionIdleMs { get; set; } = 10_000;

    /// <summary>
    /// The most memory the open partitions' logs may hold (each counted at 2^MemorySizeBits bytes): past it, the least
    /// recently used idle partitions close before their idle time. Partitions in use stay open, so the budget holds
    /// however many are busy at once. 0: a quarter of the memory available to the process.
    /// </summary>
    public long LogMemoryBytes { get; set; }

    /// <summary>
    /// Whether a partition whose log was closed at rest (idle, or on a graceful stop) starts at rest: its offsets and
    /// size are taken from its rest marker and its log is recovered at its first use. Off recovers every partition
    /// before the store opens.
    /// </summary>
    public bool OpenAtRest { get; set; } = true;

    /// <summary>Longest time an <c>acks=memory</c> append waits before a background commit persists it and makes it visible.</summary>
    public int FlushIntervalMs { get; set; } = 2;

    /// <summary>Free space the data volume keeps: appends are refused (nothing written) while less is free. 0 turns the check off.</summary>
    public long MinFreeDiskBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>How long an Idempotency-Key is remembered after its append (restarts count from the start).</summary>
    public long IdempotencyWindowMs { get; set; } = 24L * 60 * 60 * 1000;

    /// <summary>Most Idempotency-Keys remembered per partition; the oldest are forgotten first.</summary>
    public int IdempotencyKeysPerPartition { get; set; } = 10_000;

    /// <summary>How long a partition remembers a Kafka idempotent producer after its last batch (Kafka's <c>producer.id.expiration.ms</c>).</summary>
    public long ProducerIdExpirationMs { get; set; } = 24L * 60 * 60 * 1000;

    /// <summary>Most Kafka idempotent producers remembered per partition; the longest idle are forgotten first.</summary>
    public int ProducersPerPartition { get; set; } = 10_000;

    /// <summary>How often retention runs.</summary>
    public int RetentionCheckIntervalMs { get; set; } = 30_000;

    /// <summary>Bytes of log between two entries of the sparse offset index.</summary>
    public int IndexIntervalBytes { get; set; } = 4096;

    /// <summary>
    /// Bytes of committed log between two recovery checkpoints of a partition: after a crash, recovery reads at most
    /// about this much per partition before it serves (plus whatever the last commits added).
    /// </summary>
    public long RecoveryCheckpointBytes { get; set; } = 4L * 1024 * 1024;

    /// <summary>
    /// Log below a partition's recovery checkpoint that is verified (CRC and offsets of every batch) before the
    /// partition opens after a restart; a larger log opens at once and is verified in the background.
    /// </summary>
    public long VerifyBeforeOpenBytes { get; set; } = 4L * 1024 * 1024;

    /// <summary>Defaults for topics created without these settings.</summary>
    public TopicConfig TopicDefaults { get; set; } = new();

    /// <summary>Largest batch one append may write: a page, less FasterLog's entry header and the log's first bytes.</summary>
    public int MaxBatchBytes => BatchBytesInPage(PageSizeBits);

    /// <summary>The largest batch a page of 2^<paramref name="pageSizeBits"/> bytes holds.</summary>
    internal static int BatchBytesInPage(int pageSizeBits) => (1 << pageSizeBits) - 128;

    /// <summary>Largest record a topic may accept: a batch holding it alone, with room for the batch header.</summary>
    public int MaxRecordBytesLimit => MaxBatchBytes - 1024;

    /// <summary>What is wrong with these settings, or null when they can be used.</summary>
    public string? ValidationError()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            return "DataDirectory must name a folder.";
        }
        if (LegacyPageSizeBits is < 12 or > 30)
        {
            return "LegacyPageSizeBits must be between 12 and 30.";
        }
        if (JournalRotateBytes < (1L << 20))
        {
            return "JournalRotateBytes must be at least 1 MiB.";
        }
        if (PageSizeBits is < 12 or > 30)
        {
            return "PageSizeBits must be between 12 (4 KiB) and 30 (1 GiB).";
        }
        if (MemorySizeBits <= PageSizeBits || MemorySizeBits > 40)
        {
            return "MemorySizeBits must be larger than PageSizeBits (at least two pages) and at most 40.";
        }
        if (SegmentSizeBits < PageSizeBits || SegmentSizeBits > 40)
        {
            return "SegmentSizeBits must be at least PageSizeBits and at most 40.";
        }
        if (FlushIntervalMs is < 0 or > 60_000)
        {
            return "FlushIntervalMs must be between 0 and 60000.";
        }
        if (TopicDefaults.MaxRecordBytes < 1 || TopicDefaults.MaxRecordBytes > MaxRecordBytesLimit)
        {
            return $"TopicDefaults:MaxRecordBytes must be between 1 and {MaxRecordBytesLimit} (a page of 2^PageSizeBits bytes, less 1,152 bytes).";
        }
        if (TopicDefaults.ValidationError(MaxRecordBytesLimit) is var (key, problem))
        {
            // New topics take these: a default the API would refuse must not reach a topic.json, where it would refuse the topic.
            return $"TopicDefaults:{char.ToUpperInvariant(key[0])}{key[1..]}: {problem}";
        }
        if (RetentionCheckIntervalMs < 10)
        {
            return "RetentionCheckIntervalMs must be at least 10.";
        }
        if (RecoveryCheckpointBytes < 1 || VerifyBeforeOpenBytes < 0)
        {
            return "RecoveryCheckpointBytes must be positive and VerifyBeforeOpenBytes not negative.";
        }
        if (IndexIntervalBytes < 1)
        {
            return "IndexIntervalBytes must be positive.";
        }
        return null;
    }
}
