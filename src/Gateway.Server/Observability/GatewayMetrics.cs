using System.Globalization;
using Gateway.Server.Storage;
using Gateway.Storage;
using Prometheus;

namespace Gateway.Server.Observability;

/// <summary>
/// What <c>/metrics</c> shows (Prometheus text format): records and bytes produced and fetched per topic,
/// request latency per endpoint, and, read at each scrape, every partition's offsets and size and every group's
/// lag. One registry per server instance, so instances in one process (tests) never mix their series.
/// </summary>
public sealed class GatewayMetrics
{
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Counter _recordsProduced;
    private readonly Counter _bytesProduced;
    private readonly Counter _recordsFetched;
    private readonly Counter _bytesFetched;
    private readonly Counter _sharedFetches;
    private readonly Histogram _requestDuration;
    private readonly Gauge _endOffset;
    private readonly Gauge _beginOffset;
    private readonly Gauge _sizeBytes;
    private readonly Gauge _groupLag;
    private readonly Gauge _topicRecords;
    private readonly Gauge _topicLogBytes;
    private readonly Gauge _topicPartitions;
    private readonly Gauge _groupTopicLag;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Gauge> _storageFigures = new(StringComparer.Ordinal);
    private readonly MetricFactory _factory;
    private readonly int _maxPartitionSeries;

    public const int DefaultMaxPartitionSeries = 1_000;
    private readonly Gauge.Child _topicStreams;
    private readonly Gauge.Child _groupStreams;
    private readonly Gauge _waitingFetches;
    private readonly Histogram _commitDuration;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Endpoint, int Code), Histogram.Child> _durations = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TopicCounters> _topics = new(StringComparer.Ordinal);

    /// <param name="configuration">
    /// <c>Metrics:MaxPartitionSeries</c> (default 1,000): past that many partitions on the node the per-partition series
    /// are left out (thousands of partitions would make every scrape megabytes); the per-topic ones are always there.
    /// </param>
    public GatewayMetrics(Microsoft.Extensions.Configuration.IConfiguration? configuration = null)
    {
        _maxPartitionSeries = configuration?.GetValue("Metrics:MaxPartitionSeries", DefaultMaxPartitionSeries) ?? DefaultMaxPartitionSeries;
        var metrics = Metrics.WithCustomRegistry(_registry);
        _recordsProduced = metrics.CreateCounter("gateway_records_produced_total", "Records appended, per topic.", "topic");
        _bytesProduced = metrics.CreateCounter("gateway_bytes_produced_total", "Encoded bytes appended, per topic.", "topic");
        _recordsFetched = metrics.CreateCounter("gateway_records_fetched_total", "Records returned by partition and member fetches, per topic.", "topic");
        _bytesFetched = metrics.CreateCounter("gateway_bytes_fetched_total", "Encoded bytes of records returned by fetches, per topic.", "topic");
        _sharedFetches = metrics.CreateCounter("gateway_fetches_shared_total", "Partition fetches answered from the shared encoded-record ring (no log read, no encoding).");
        _requestDuration = metrics.CreateHistogram("gateway_request_duration_seconds", "Request latency per endpoint.", new HistogramConfiguration
        {
            LabelNames = ["endpoint", "code"],
            Buckets = Histogram.ExponentialBuckets(0.0001, 2, 18),
        });
        _endOffset = metrics.CreateGauge("gateway_partition_end_offset", "The partition's end offset (high watermark).", "topic", "partition");
        _beginOffset = metrics.CreateGauge("gateway_partition_begin_offset", "The partition's begin offset.", "topic", "partition");
        _sizeBytes = metrics.CreateGauge("gateway_partition_size_bytes", "Bytes the partition's segment files take on disk.", "topic", "partition");
        _groupLag = metrics.CreateGauge("gateway_group_lag", "End offset minus the group's committed offset.", "group", "topic", "partition");
        _topicRecords = metrics.CreateGauge("gateway_topic_records", "Records the topic keeps: the sum over its partitions of end offset minus begin offset.", "topic");
        _topicLogBytes = metrics.CreateGauge("gateway_topic_log_bytes", "Bytes of log the topic's partitions hold between their begin and their end.", "topic");
        _topicPartitions = metrics.CreateGauge("gateway_topic_partitions", "The topic's partitions.", "topic");
        _groupTopicLag = metrics.CreateGauge("gateway_group_topic_lag", "The group's lag summed over the topic's partitions it committed.", "group", "topic");
        _factory = metrics;
        var streams = metrics.CreateGauge("gateway_sse_subscribers", "Server-Sent Events streams open now, by kind (topic or group).", "kind");
        _topicStreams = streams.WithLabels("topic");
        _groupStreams = streams.WithLabels("group");
        _waitingFetches = metrics.CreateGauge("gateway_waiting_fetches", "Fetches (long-polls, by offset or as a group member) waiting for a record now.");
        _commitDuration = metrics.CreateHistogram("gateway_commit_duration_seconds", "Duration of each log commit round (writes and fsyncs shared by every waiting append).", new HistogramConfiguration
        {
            Buckets = Histogram.ExponentialBuckets(0.00005, 2, 16),
        });
    }

    public CollectorRegistry Registry => _registry;

    public void Produced(string topic, long records, long bytes)
    {
        var counters = CountersOf(topic);
        counters.RecordsProduced.Inc(records);
        counters.BytesProduced.Inc(bytes);
    }

    /// <summary>A partition fetch answered from the shared ring of encoded tail records.</summary>
    public void FetchedShared(string topic, long records, long bytes)
    {
        _sharedFetches.Inc();
        Fetched(topic, records, bytes);
    }

    public void Fetched(string topic, long records, long bytes)
    {
        if (records > 0)
        {
            var counters = CountersOf(topic);
            counters.RecordsFetched.Inc(records);
            counters.BytesFetched.Inc(bytes);
        }
    }

    /// <summary>Counts an open SSE stream until the returned scope is disposed.</summary>
    public StreamScope StreamOpened(bool group)
    {
        var gauge = group ? _groupStreams : _topicStreams;
        gauge.Inc();
        return new StreamScope(gauge);
    }

    /// <summary>Counts a long-poll as waiting until the scope is disposed.</summary>
    public StreamScope FetchWaiting()
    {
        _waitingFetches.Inc();
        return new StreamScope(_waitingFetches);
    }

    public void CommitCompleted(TimeSpan duration) => _commitDuration.Observe(duration.TotalSeconds);

    /// <summary>Decrements the gauge (subscribers, waiting fetches) once.</summary>
    public readonly struct StreamScope(IGauge gauge) : IDisposable
    {
        public void Dispose() => gauge.Dec();
    }

    /// <summary>Drops a deleted topic's counters: a topic created later under the name starts from zero.</summary>
    public void TopicDeleted(string topic)
    {
        if (_topics.TryRemove(topic, out _))
        {
            _recordsProduced.RemoveLabelled(topic);
            _bytesProduced.RemoveLabelled(topic);
            _recordsFetched.RemoveLabelled(topic);
            _bytesFetched.RemoveLabelled(topic);
        }
    }

    /// <summary>A topic's labelled counters, looked up once: produce and fetch allocate nothing for them.</summary>
    private TopicCounters CountersOf(string topic) => _topics.GetOrAdd(topic, t => new TopicCounters(
        _recordsProduced.WithLabels(t), _bytesProduced.WithLabels(t), _recordsFetched.WithLabels(t), _bytesFetched.WithLabels(t)));

    private sealed record TopicCounters(Counter.Child RecordsProduced, Counter.Child BytesProduced, Counter.Child RecordsFetched, Counter.Child BytesFetched);

    /// <summary>Notes a request's duration under the name of the endpoint that served it and its status.</summary>
    internal void ObserveRequest(Endpoint? endpoint, int status, TimeSpan elapsed)
    {
        string name = endpoint?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName ?? "other";
        // The labelled child is looked up once per endpoint and status: no allocation on the hot path.
        var child = _durations.GetOrAdd(
            (name, status),
            key => _requestDuration.WithLabels(key.Endpoint, key.Code.ToString(CultureInfo.InvariantCulture)));
        child.Observe(elapsed.TotalSeconds);
    }

    /// <summary>Refreshes the per-partition and per-group figures before each scrape, once the storage is open.</summary>
    internal void Attach(IStorageHost storage)
    {
        _registry.AddBeforeCollectCallback(async _ =>
        {
            if (storage.IsOpen)
            {
                await RefreshAsync(storage.Store, storage.Groups);
            }
        });
    }

    private async Task RefreshAsync(ILogStorage store, IGroupCoordinator groups)
    {
        var topics = store.Topics;
        bool perPartition = topics.Sum(t => t.PartitionCount) <= _maxPartitionSeries;
        if (store is IStorageFigures engine)
        {
            foreach (var figure in engine.Figures)
            {
                _storageFigures.GetOrAdd(figure.Name, static (name, state) => state._factory.CreateGauge(name, state.Help), (_factory, figure.Help)).Set(figure.Value);
            }
        }
        foreach (var topic in topics)
        {
            long records = 0, bytes = 0;
            foreach (var partition in topic.Partitions)
            {
                long begin = partition.BeginOffset, end = partition.EndOffset;
                records += end - begin;
                bytes += partition.SizeBytes;
                if (perPartition)
                {
                    string[] labels = [topic.Name, partition.Partition.ToString(CultureInfo.InvariantCulture)];
                    _endOffset.WithLabels(labels).Set(end);
                    _beginOffset.WithLabels(labels).Set(begin);
                    _sizeBytes.WithLabels(labels).Set(partition.SizeOnDiskBytes);
                }
            }
            _topicRecords.WithLabels(topic.Name).Set(records);
            _topicLogBytes.WithLabels(topic.Name).Set(bytes);
            _topicPartitions.WithLabels(topic.Name).Set(topic.PartitionCount);
        }
        Clear(_groupTopicLag);
        foreach (var group in await groups.ListAsync())
        {
            var lagByTopic = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var (tp, committed) in group.CommittedOffsets)
            {
                if (store.TryGetTopic(tp.Topic, out var topic) && tp.Partition < topic.PartitionCount)
                {
                    long lag = Math.Max(0, topic.GetPartition(tp.Partition).EndOffset - committed);
                    lagByTopic[tp.Topic] = lagByTopic.GetValueOrDefault(tp.Topic) + lag;
                    if (perPartition)
                    {
                        _groupLag.WithLabels(group.Name, tp.Topic, tp.Partition.ToString(CultureInfo.InvariantCulture)).Set(lag);
                    }
                }
            }
            foreach (var (topic, lag) in lagByTopic)
            {
                _groupTopicLag.WithLabels(group.Name, topic).Set(lag);
            }
        }
        if (perPartition)
        {
            RemoveGone(_endOffset, store);
            RemoveGone(_beginOffset, store);
            RemoveGone(_sizeBytes, store);
        }
        else
        {
            Clear(_endOffset);
            Clear(_beginOffset);
            Clear(_sizeBytes);
            Clear(_groupLag);
        }
        foreach (string[] labels in _topicRecords.GetAllLabelValues().ToList())
        {
            if (!store.TryGetTopic(labels[0], out _))
            {
                _topicRecords.RemoveLabelled(labels);
                _topicLogBytes.RemoveLabelled(labels);
                _topicPartitions.RemoveLabelled(labels);
            }
        }
    }

    private static void Clear(Gauge gauge)
    {
        foreach (string[] labels in gauge.GetAllLabelValues().ToList())
        {
            gauge.RemoveLabelled(labels);
        }
    }

    /// <summary>Series of deleted topics disappear instead of showing their last value forever.</summary>
    private static void RemoveGone(Gauge gauge, ILogStorage store)
    {
        foreach (string[] labels in gauge.GetAllLabelValues().ToList())
        {
            if (!store.TryGetTopic(labels[0], out var topic) || int.Parse(labels[1], CultureInfo.InvariantCulture) >= topic.PartitionCount)
            {
                gauge.RemoveLabelled(labels);
            }
        }
    }
}
