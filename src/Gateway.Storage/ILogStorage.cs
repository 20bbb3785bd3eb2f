using System.Diagnostics.CodeAnalysis;
using Gateway.Storage.Records;

namespace Gateway.Storage;

/// <summary>
/// The topics of a backend: the catalog and its administration. Members that return at once read metadata the
/// backend keeps current; they never wait for I/O. The embedded backend is Gateway.Log's <c>LogStore</c>.
/// </summary>
public interface ILogStorage
{
    /// <summary>What the backend offers beyond the common API; the HTTP layer answers 501 <c>not_supported</c> for the rest.</summary>
    StorageCapabilities Capabilities { get; }

    /// <summary>Sizes the backend can take and the config a topic gets when its creation leaves something out.</summary>
    StorageLimits Limits { get; }

    /// <summary>Every topic that serves, by name.</summary>
    IReadOnlyCollection<ITopic> Topics { get; }

    /// <summary>The topic; <see cref="TopicNotFoundException"/>, or <see cref="LogCorruptedException"/> for one refused at start.</summary>
    ITopic GetTopic(string name);

    bool TryGetTopic(string name, [NotNullWhen(true)] out ITopic? topic);

    /// <summary>Whether the topic exists, counting one that cannot serve now (refused at start).</summary>
    bool TopicExists(string name);

    /// <summary>
    /// A producer id never handed out before, not even before a crash, for a Kafka idempotent producer (below
    /// <see cref="ProducerBatch.ProducerIdLimit"/>). Needs <see cref="StorageCapabilities.IdempotentProducers"/>.
    /// </summary>
    ValueTask<long> NewProducerIdAsync(CancellationToken cancellationToken = default);

    /// <summary>What cannot serve and why (readiness): a partition, or a whole topic (partition -1).</summary>
    IReadOnlyList<(string Topic, int Partition, string Reason)> Failures { get; }

    Task<ITopic> CreateTopicAsync(string name, int partitions, TopicConfig? config = null, CancellationToken cancellationToken = default);

    /// <summary>Changes the config, grows the partition count, or both (null: unchanged).</summary>
    Task<ITopic> UpdateTopicAsync(string name, TopicConfig? config, int? partitions, CancellationToken cancellationToken = default);

    Task DeleteTopicAsync(string name, CancellationToken cancellationToken = default);
}

/// <summary>What a backend can take: the largest produce request's encoded records, the largest record a topic may allow, and the defaults of a topic's config.</summary>
public sealed record StorageLimits(int MaxBatchBytes, int MaxRecordBytesLimit, TopicConfig TopicDefaults);

/// <summary>Features a backend may lack; the HTTP layer answers 501 <c>not_supported</c> for those it does not declare.</summary>
[Flags]
public enum StorageCapabilities
{
    None = 0,

    /// <summary>Append only at an expected end offset (412 <c>offset_mismatch</c> otherwise).</summary>
    ConditionalAppend = 1,

    /// <summary><c>Idempotency-Key</c>: a retried request lands once, also across restarts.</summary>
    IdempotencyKeys = 2,

    /// <summary>Kafka idempotent producers: producer ids (<see cref="ILogStorage.NewProducerIdAsync"/>) and per-partition sequence checks.</summary>
    IdempotentProducers = 4,

    /// <summary>A topic's own default acks (<see cref="TopicConfig.Acks"/> other than the server's default).</summary>
    TopicAcks = 8,
}

/// <summary>One incarnation of a topic: a topic deleted and created again is another object.</summary>
public interface ITopic
{
    string Name { get; }

    TopicConfig Config { get; }

    /// <summary>Creation time, Unix milliseconds.</summary>
    long CreatedAt { get; }

    int PartitionCount { get; }

    IReadOnlyList<IPartition> Partitions { get; }

    /// <summary>The partition; <see cref="PartitionNotFoundException"/> when the topic has no such partition.</summary>
    IPartition GetPartition(int partition);

    /// <summary>The partition keyless records of the next request go to (round robin over the topic's partitions).</summary>
    int NextStickyPartition();

    /// <summary>
    /// Starts an attempt of an <c>Idempotency-Key</c> request, before its earlier attempts are looked up
    /// (<see cref="IPartition.TryGetIdempotent"/>): returns once no other attempt of the key is in flight on any node
    /// that shares this storage, so the lookup sees every earlier attempt that completed. The caller reports what it
    /// appended (<see cref="IIdempotentAttempt.CompleteAsync"/>) and disposes the attempt. A backend whose batches carry
    /// the stamp into a store only one process uses (the embedded one) needs nothing here.
    /// </summary>
    ValueTask<IIdempotentAttempt> BeginIdempotentAsync(IdempotencyStamp stamp, CancellationToken cancellationToken = default) =>
        new(IIdempotentAttempt.None);
}

/// <summary>One attempt of an <c>Idempotency-Key</c> request (<see cref="ITopic.BeginIdempotentAsync"/>).</summary>
public interface IIdempotentAttempt : IAsyncDisposable
{
    /// <summary>An attempt with nothing to record.</summary>
    static IIdempotentAttempt None { get; } = new NoAttempt();

    /// <summary>Records what this attempt appended (each record's offset, by partition): later attempts are answered from it.</summary>
    ValueTask CompleteAsync(IReadOnlyDictionary<int, IReadOnlyList<long>> appended, CancellationToken cancellationToken = default);

    private sealed class NoAttempt : IIdempotentAttempt
    {
        public ValueTask CompleteAsync(IReadOnlyDictionary<int, IReadOnlyList<long>> appended, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// One partition of one topic incarnation: a dense, append-only sequence of records. Offsets below
/// <see cref="EndOffset"/> (the high watermark) are committed and are all a reader ever sees.
/// </summary>
public interface IPartition
{
    string Topic { get; }

    int Partition { get; }

    /// <summary>The first offset still stored.</summary>
    long BeginOffset { get; }

    /// <summary>One past the last committed record.</summary>
    long EndOffset { get; }

    /// <summary>Why the partition cannot serve, or null.</summary>
    Exception? Failure { get; }

    /// <summary>Bytes of records stored.</summary>
    long SizeBytes { get; }

    /// <summary>Bytes the partition takes on disk.</summary>
    long SizeOnDiskBytes { get; }

    /// <summary>The timestamp of the first stored record, or null when there is none.</summary>
    long? OldestTimestamp();

    /// <summary>
    /// Appends the batch's records, all or nothing; with <see cref="Acks.Disk"/> the task completes once they are
    /// durable and visible. Returns the first record's offset. <paramref name="expectedEndOffset"/> needs
    /// <see cref="StorageCapabilities.ConditionalAppend"/>.
    /// </summary>
    ValueTask<long> AppendAsync(RecordBatchBuilder batch, Acks acks, long? expectedEndOffset = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Committed records from <paramref name="offset"/> (at least one if any is there, then up to the limits). The
    /// set owns pooled buffers: dispose it. <see cref="OffsetOutOfRangeException"/> outside [begin, end].
    /// </summary>
    ValueTask<RecordSet> ReadAsync(long offset, int maxRecords, int maxBytes, CancellationToken cancellationToken = default);

    /// <summary>
    /// The begin and end offsets as the log has them now. <see cref="BeginOffset"/> and <see cref="EndOffset"/> are this
    /// node's view; on a backend whose log other nodes and clients write too (kafka) that view may lag, so a position
    /// learned elsewhere (a commit, a cursor, an offset another node answered) is judged against what this asks the log
    /// (and the view moves on with it). The embedded backend's view is the log's: it answers at once.
    /// </summary>
    ValueTask<(long Begin, long End)> CurrentOffsetsAsync(CancellationToken cancellationToken = default) => new((BeginOffset, EndOffset));

    /// <summary>The first offset whose record's timestamp is at or after <paramref name="timestamp"/> (the end offset if none).</summary>
    ValueTask<long> OffsetForTimestampAsync(long timestamp, CancellationToken cancellationToken = default);

    /// <summary>Deletes the records below <paramref name="offset"/>; returns the new begin offset.</summary>
    Task<long> DeleteRecordsBeforeAsync(long offset, CancellationToken cancellationToken = default);

    /// <summary>
    /// A shared task that completes when a record at <paramref name="offset"/> is readable, or the partition closes:
    /// any number of waiters, no timer and no registration each (SSE streams wait on it).
    /// </summary>
    Task NextCommit(long offset);

    /// <summary>Waits for a record at <paramref name="offset"/>: true once readable, false when the partition closed.</summary>
    ValueTask<bool> WaitForRecordAsync(long offset, CancellationToken cancellationToken);

    /// <summary>The last batch a producer (an idempotency key) appended here, if the backend keeps it.</summary>
    bool TryGetIdempotent(long producerId, out IdempotentBatch batch);

    /// <summary>Completes once every record below <paramref name="endOffset"/> is durable.</summary>
    Task WaitForCommittedAsync(long endOffset, CancellationToken cancellationToken = default);
}
