using System.Text;
using Gateway.Server.Errors;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.Server.Records;

/// <summary>
/// The records of one produce request, encoded into one batch per partition as they are parsed. Nothing is
/// appended until every record has been validated; then each partition's records go in as one batch (all or
/// nothing per partition) and the answer lists each record's offset in request order.
/// </summary>
internal sealed class ProduceBatches : IRecordSink, IDisposable
{
    private readonly ITopic _topic;
    private readonly int? _partition;
    private readonly bool _partitionFromPath;
    private readonly long _now;
    private readonly int _maxRecordBytes;
    private readonly int _maxBatchBytes;
    private readonly RecordBatchBuilder?[] _builders;
    private readonly List<(int Partition, int Index)> _placement = [];
    private int _stickyPartition;
    private int _firstCapacity;

    /// <param name="topic">the topic produced to</param>
    /// <param name="partition">the partition every record goes to unless it names its own, if the request names one</param>
    /// <param name="partitionFromPath">true when the URL names the partition: records may not name another</param>
    /// <param name="now">append time (epoch ms) for records without a timestamp</param>
    /// <param name="maxBatchBytes">largest batch one append may write</param>
    /// <param name="idempotencyKey">the request's Idempotency-Key, if any: keyless records then go where the key says, so that a retry places them alike</param>
    /// <param name="bodyBytes">the request body's length, if declared: the first batch starts that large</param>
    public ProduceBatches(ITopic topic, int? partition, bool partitionFromPath, long now, int maxBatchBytes, string? idempotencyKey = null, long? bodyBytes = null)
    {
        // A record encodes to fewer bytes than its JSON, a raw body to its length plus the batch header (61 bytes) and
        // a few of framing: one buffer of that size holds a one-partition batch without growing (doubling from 1 KB
        // copied 100 KB of records seven times over).
        _firstCapacity = bodyBytes is long length ? (int)Math.Clamp(length + 128, 1024, maxBatchBytes) : 1024;
        // The sticky partition, chosen here only: by the idempotency key, else the topic's round robin at the first keyless record.
        _stickyPartition = idempotencyKey is null ? -1 : Partitioner.ForKey(Encoding.UTF8.GetBytes(idempotencyKey), topic.PartitionCount);
        _topic = topic;
        _partition = partition;
        _partitionFromPath = partitionFromPath;
        _now = now;
        _maxRecordBytes = topic.Config.MaxRecordBytes;
        _maxBatchBytes = maxBatchBytes;
        _builders = new RecordBatchBuilder?[topic.PartitionCount];
        if (partition is int p)
        {
            ValidatePartition(p);
        }
    }

    public int Count => _placement.Count;

    /// <summary>Encoded bytes of every partition's batch.</summary>
    public long SizeInBytes => _builders.Sum(b => (long)(b?.SizeInBytes ?? 0));

    /// <summary>Encodes one record into its partition's batch; the partition is the record's own, the request's, the key's, or the request's sticky one.</summary>
    public void Add(int? partition, long? timestamp, Payload key, Payload value, IReadOnlyList<RecordHeader>? headers)
    {
        int index = _placement.Count;
        if (_partitionFromPath && partition is int own && own != _partition)
        {
            throw ApiException.BadRequest("partition_conflict", $"records[{index}] names partition {own}, but the request is for partition {_partition}.");
        }
        int target;
        if ((partition ?? _partition) is int chosen)
        {
            target = chosen;
            ValidatePartition(target);
        }
        else if (!key.IsNull)
        {
            target = Partitioner.ForKey(key.Bytes, _builders.Length);
        }
        else
        {
            if (_stickyPartition < 0)
            {
                _stickyPartition = _topic.NextStickyPartition() % _builders.Length;
            }
            target = _stickyPartition;
        }
        if (timestamp is < 0)
        {
            throw ApiException.BadRequest("invalid_timestamp", $"records[{index}]: timestamp is epoch milliseconds, not negative.");
        }
        var builder = _builders[target];
        if (builder is null)
        {
            builder = _builders[target] = new RecordBatchBuilder(_firstCapacity);
            _firstCapacity = 1024; // the records of a request spread over partitions share its length
        }
        builder.Add(timestamp ?? _now, key, value, headers);
        if (builder.LastRecordSize > _maxRecordBytes)
        {
            throw new ApiException(
                StatusCodes.Status413PayloadTooLarge,
                "record_too_large",
                $"records[{index}] encodes to {builder.LastRecordSize} bytes; topic '{_topic.Name}' accepts at most {_maxRecordBytes} (maxRecordBytes).");
        }
        if (builder.SizeInBytes > _maxBatchBytes)
        {
            throw new ApiException(
                StatusCodes.Status413PayloadTooLarge,
                "batch_too_large",
                $"The records for partition {target} exceed {_maxBatchBytes} bytes, the most one append holds; split the request.");
        }
        _placement.Add((target, builder.Count - 1));
    }

    /// <summary>Appends every partition's batch (concurrently, so durable appends share commits) and answers with the offsets.</summary>
    public async Task<ProduceResponse> AppendAsync(Acks acks, long? expectedOffset, CancellationToken cancellationToken) =>
        (await AppendAsync(acks, expectedOffset, stamp: null, cancellationToken)).Response;

    /// <summary>
    /// Appends the request once: partitions that already hold a batch with this stamp (an earlier attempt) are
    /// answered from it; the others are appended stamped. Replayed is true when nothing had to be appended.
    /// </summary>
    public async Task<(ProduceResponse Response, bool Replayed)> AppendAsync(Acks acks, long? expectedOffset, IdempotencyStamp? stamp, CancellationToken cancellationToken)
    {
        if (_placement.Count == 0)
        {
            throw ApiException.BadRequest("no_records", "The request holds no records.");
        }
        var baseOffsets = new long[_builders.Length];
        // On a backend that nodes share, the attempt waits here for any attempt of the key in flight elsewhere.
        await using var attempt = stamp is { } claim ? await _topic.BeginIdempotentAsync(claim, cancellationToken) : IIdempotentAttempt.None;
        var earlier = stamp is { } s
            ? IdempotentRequests.EarlierAttempt(_topic, s, p => p < _builders.Length ? _builders[p]?.Count ?? 0 : 0)
            : [];
        var appends = new List<Task>();
        bool replayed = stamp is not null;
        for (int p = 0; p < _builders.Length; p++)
        {
            if (_builders[p] is not { } builder)
            {
                continue;
            }
            var partition = _topic.GetPartition(p);
            if (earlier.TryGetValue(p, out var batch))
            {
                // Answered again only once committed: a replay is never an acknowledgement of what could vanish.
                baseOffsets[p] = batch.BaseOffset;
                appends.Add(partition.WaitForCommittedAsync(batch.EndOffset, cancellationToken));
                continue;
            }
            replayed = false;
            if (stamp is { } mark)
            {
                builder.MarkIdempotent(mark);
            }
            int target = p;
            appends.Add(AppendOneAsync(target, builder));
        }
        await Task.WhenAll(appends);
        var offsets = new RecordPosition[_placement.Count];
        for (int i = 0; i < offsets.Length; i++)
        {
            var (partition, index) = _placement[i];
            long offset = earlier.TryGetValue(partition, out var batch) ? batch.OffsetOf(index)
                : _builders[partition]?.AppendedOffsets is { } appended ? appended[index]
                : baseOffsets[partition] + index;
            offsets[i] = new RecordPosition(partition, offset);
        }
        if (stamp is not null && !replayed)
        {
            await attempt.CompleteAsync(
                offsets.GroupBy(o => o.Partition).ToDictionary(g => g.Key, g => (IReadOnlyList<long>)[.. g.Select(o => o.Offset).Order()]),
                cancellationToken);
        }
        return (new ProduceResponse(offsets), replayed);

        async Task AppendOneAsync(int partition, RecordBatchBuilder builder) =>
            baseOffsets[partition] = await _topic.GetPartition(partition).AppendAsync(builder, acks, expectedOffset, cancellationToken);
    }

    public void Dispose()
    {
        foreach (var builder in _builders)
        {
            builder?.Dispose();
        }
    }

    private void ValidatePartition(int partition)
    {
        if ((uint)partition >= (uint)_builders.Length)
        {
            throw new PartitionNotFoundException(_topic.Name, partition, _builders.Length);
        }
    }
}
