using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using KafkaTopicPartition = Confluent.Kafka.TopicPartition;

namespace Gateway.Storage.Kafka;

/// <summary>
/// The storage port over a Kafka cluster. Every node is stateless: topics, configs and offsets are the cluster's,
/// looked up again every <c>Kafka:MetadataRefreshMs</c> (so topics other clients create are served too) and after
/// every change made here. Retention is the cluster's own (the topic's <c>retention.ms</c>/<c>retention.bytes</c>).
/// </summary>
public sealed class KafkaLogStorage : ILogStorage, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, KafkaTopic> _topics = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _closing = new();
    private readonly TimeProvider _time;
    private Task _refreshing = Task.CompletedTask;
    private int _disposed;
    private long _changes; // raised by every topic change made here: a look at the cluster begun before it is stale

    private KafkaLogStorage(KafkaBackendOptions options, StorageLimits limits, TimeProvider time, ILogger logger)
    {
        Options = options;
        Limits = limits;
        _time = time;
        Clients = new KafkaClients(options, logger);
        Tail = new KafkaTail(this, logger);
    }

    internal KafkaBackendOptions Options { get; }

    internal KafkaClients Clients { get; }

    /// <summary>The node's tail reader: follows the partitions someone waits on.</summary>
    internal KafkaTail Tail { get; }

    internal bool Closed => _closing.IsCancellationRequested;

    /// <summary>Connects to the cluster and reads its topics; a cluster that does not answer within the request timeout fails the open.</summary>
    public static async Task<KafkaLogStorage> OpenAsync(KafkaBackendOptions options, StorageLimits limits, TimeProvider time, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        if (options.ValidationError() is { } invalid)
        {
            throw new ArgumentException(invalid, nameof(options));
        }
        var storage = new KafkaLogStorage(options, limits, time, logger ?? NullLogger.Instance);
        try
        {
            await storage.RefreshAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await storage.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        storage._refreshing = storage.RefreshLoopAsync();
        return storage;
    }

    /// <summary>
    /// Idempotency-Key once the groups log is read (it carries the keys' claims); never conditional appends (Kafka has
    /// no conditional produce) nor a topic's own acks (Kafka keeps no such topic config).
    /// </summary>
    public StorageCapabilities Capabilities => Coordination is null ? StorageCapabilities.None : StorageCapabilities.IdempotencyKeys;

    /// <summary>The groups log, which also carries Idempotency-Key claims; set when it has been read.</summary>
    internal Groups.KafkaGroups? Coordination { get; set; }

    public StorageLimits Limits { get; }

    public IReadOnlyCollection<ITopic> Topics => _topics.Values.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();

    /// <summary>Nothing while the cluster answers; when its last look failed, the whole cluster (readiness says so).</summary>
    public IReadOnlyList<(string Topic, int Partition, string Reason)> Failures =>
        Reachable ? [] : [($"Kafka cluster {Options.BootstrapServers}", -1, "it did not answer the last metadata request")];

    /// <summary>Whether the last look at the cluster succeeded (readiness).</summary>
    public bool Reachable { get; private set; } = true;

    public ITopic GetTopic(string name) => TryGetTopic(name, out var topic) ? topic : throw new TopicNotFoundException(name);

    public bool TryGetTopic(string name, [NotNullWhen(true)] out ITopic? topic)
    {
        bool found = _topics.TryGetValue(name, out var kafkaTopic);
        topic = kafkaTopic;
        return found;
    }

    public bool TopicExists(string name) => _topics.ContainsKey(name);

    public ValueTask<long> NewProducerIdAsync(CancellationToken cancellationToken = default) =>
        throw new NotSupportedByBackendException("idempotentProducers", "The kafka backend hands out no Kafka producer ids: Kafka clients talk to the cluster itself.");

    public async Task<ITopic> CreateTopicAsync(string name, int partitions, TopicConfig? config = null, CancellationToken cancellationToken = default)
    {
        config ??= Limits.TopicDefaults;
        RefuseTopicAcks(config);
        try
        {
            await Clients.Admin.CreateTopicsAsync(
                [new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = Options.ReplicationFactor, Configs = ToKafka(config) }],
                new CreateTopicsOptions { RequestTimeout = Clients.RequestTimeout, OperationTimeout = Clients.RequestTimeout }).ConfigureAwait(false);
        }
        catch (CreateTopicsException ex) when (ex.Results.Count > 0 && ex.Results[0].Error.Code == ErrorCode.TopicAlreadyExists)
        {
            throw new TopicExistsException(name);
        }
        catch (KafkaException ex)
        {
            throw Failed("create topic", name, ex);
        }
        return await SeeTopicAsync(name, config, cancellationToken).ConfigureAwait(false);
    }

    public async Task<ITopic> UpdateTopicAsync(string name, TopicConfig? config, int? partitions, CancellationToken cancellationToken = default)
    {
        var topic = (KafkaTopic)GetTopic(name);
        if (config is not null)
        {
            RefuseTopicAcks(config);
        }
        try
        {
            if (partitions is int count && count != topic.PartitionCount)
            {
                await Clients.Admin.CreatePartitionsAsync(
                    [new PartitionsSpecification { Topic = name, IncreaseTo = count }],
                    new CreatePartitionsOptions { RequestTimeout = Clients.RequestTimeout, OperationTimeout = Clients.RequestTimeout }).ConfigureAwait(false);
            }
            if (config is not null)
            {
                var resource = new ConfigResource { Type = ResourceType.Topic, Name = name };
                var entries = ToKafka(config).Select(e => new ConfigEntry { Name = e.Key, Value = e.Value, IncrementalOperation = AlterConfigOpType.Set }).ToList();
                await Clients.Admin.IncrementalAlterConfigsAsync(
                    new Dictionary<ConfigResource, List<ConfigEntry>> { [resource] = entries },
                    new IncrementalAlterConfigsOptions { RequestTimeout = Clients.RequestTimeout }).ConfigureAwait(false);
            }
        }
        catch (KafkaException ex)
        {
            throw Failed("update topic", name, ex);
        }
        return await SeeTopicAsync(name, config ?? topic.Config, cancellationToken).ConfigureAwait(false);
    }

    public async Task DeleteTopicAsync(string name, CancellationToken cancellationToken = default)
    {
        try
        {
            await Clients.Admin.DeleteTopicsAsync([name], new DeleteTopicsOptions { RequestTimeout = Clients.RequestTimeout, OperationTimeout = Clients.RequestTimeout }).ConfigureAwait(false);
        }
        catch (DeleteTopicsException ex) when (ex.Results.Count > 0 && ex.Results[0].Error.Code == ErrorCode.UnknownTopicOrPart)
        {
            _topics.TryRemove(name, out _);
            throw new TopicNotFoundException(name);
        }
        catch (KafkaException ex)
        {
            throw Failed("delete topic", name, ex);
        }
        Interlocked.Increment(ref _changes);
        if (_topics.TryRemove(name, out var removed))
        {
            foreach (var partition in removed.KafkaPartitions)
            {
                partition.Remove();
            }
        }
    }

    /// <summary>Closes the clients; once (the host and its container may both dispose it).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _closing.CancelAsync().ConfigureAwait(false);
        foreach (var topic in _topics.Values)
        {
            foreach (var partition in topic.KafkaPartitions)
            {
                partition.Signal();
            }
        }
        try
        {
            await _refreshing.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        Tail.Dispose();
        Clients.Dispose();
        _closing.Dispose();
    }

    /// <summary>The topic as the cluster now describes it, after a change made here (the metadata may lag the change a moment).</summary>
    private async Task<KafkaTopic> SeeTopicAsync(string name, TopicConfig config, CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow() + Clients.RequestTimeout;
        while (true)
        {
            var metadata = await Task.Run(() => Clients.Admin.GetMetadata(name, Clients.RequestTimeout), cancellationToken).ConfigureAwait(false);
            var described = metadata.Topics.FirstOrDefault(t => t.Topic == name);
            if (described is { Error.IsError: false, Partitions.Count: > 0 })
            {
                var seen = Update(name, described.Partitions.Count, config);
                Interlocked.Increment(ref _changes);
                return seen;
            }
            if (_time.GetUtcNow() > deadline)
            {
                throw new StorageFailureException($"The Kafka cluster did not show topic '{name}' within {Options.RequestTimeoutMs} ms.");
            }
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    private KafkaTopic Update(string name, int partitionCount, TopicConfig config)
    {
        return _topics.AddOrUpdate(
            name,
            _ => new KafkaTopic(this, name, config, _time.GetUtcNow().ToUnixTimeMilliseconds(), Enumerable.Range(0, partitionCount).Select(p => new KafkaPartition(this, name, p)).ToList()),
            (_, seen) => seen.PartitionCount == partitionCount && seen.Config == config
                ? seen
                : new KafkaTopic(this, name, config, seen.CreatedAt, Enumerable.Range(0, partitionCount).Select(p => p < seen.PartitionCount ? seen.KafkaPartitions[p] : new KafkaPartition(this, name, p)).ToList()));
    }

    private async Task RefreshLoopAsync()
    {
        while (!_closing.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Options.MetadataRefreshMs), _time, _closing.Token).ConfigureAwait(false);
                await RefreshAsync(_closing.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_closing.IsCancellationRequested)
            {
                return;
            }
            catch (StorageFailureException)
            {
                // Unreachable this round (Reachable says so): the next round tries again.
            }
        }
    }

    /// <summary>Topics, partition counts, configs and watermarks as the cluster has them now.</summary>
    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        Metadata metadata;
        long changes = Volatile.Read(ref _changes);
        try
        {
            metadata = await Task.Run(() => Clients.Admin.GetMetadata(Clients.RequestTimeout), cancellationToken).ConfigureAwait(false);
        }
        catch (KafkaException ex)
        {
            Reachable = false;
            throw new StorageFailureException($"The Kafka cluster at {Options.BootstrapServers} does not answer: {ex.Error.Reason}.", ex);
        }
        var described = metadata.Topics.Where(t => !t.Error.IsError && !t.Topic.StartsWith("__", StringComparison.Ordinal) && t.Partitions.Count > 0).ToList();
        var configs = await ConfigsAsync(described.Select(t => t.Topic).ToList()).ConfigureAwait(false);
        // A topic made, grown or deleted here while this look was under way: the look may predate it (a topic just
        // made would vanish until the next round); the topics stay as they are and the next round looks again.
        bool stale = Volatile.Read(ref _changes) != changes;
        foreach (var topic in stale ? [] : described)
        {
            Update(topic.Topic, topic.Partitions.Count, configs.GetValueOrDefault(topic.Topic) ?? (_topics.TryGetValue(topic.Topic, out var seen) ? seen.Config : Limits.TopicDefaults));
        }
        foreach (string gone in stale ? [] : _topics.Keys.Except(described.Select(t => t.Topic)).ToList())
        {
            if (_topics.TryRemove(gone, out var removed))
            {
                foreach (var partition in removed.KafkaPartitions)
                {
                    partition.Remove();
                }
            }
        }
        await Clients.WithReaderAsync(reader =>
        {
            foreach (var topic in _topics.Values)
            {
                foreach (var partition in topic.KafkaPartitions)
                {
                    try
                    {
                        var marks = reader.QueryWatermarkOffsets(new KafkaTopicPartition(topic.Name, partition.Partition), Clients.RequestTimeout);
                        partition.Observe(marks.Low.Value, marks.High.Value);
                    }
                    catch (KafkaException)
                    {
                        // Leader moving, or the topic just went: the next round looks again.
                    }
                }
            }
            return true;
        }, cancellationToken).ConfigureAwait(false);
        Reachable = true;
    }

    /// <summary>The port's config of each topic from the cluster's (retention.ms, retention.bytes, max.message.bytes); a topic the cluster does not describe is left out.</summary>
    private async Task<Dictionary<string, TopicConfig>> ConfigsAsync(List<string> topics)
    {
        var configs = new Dictionary<string, TopicConfig>(StringComparer.Ordinal);
        if (topics.Count == 0)
        {
            return configs;
        }
        try
        {
            var results = await Clients.Admin.DescribeConfigsAsync(
                topics.Select(t => new ConfigResource { Type = ResourceType.Topic, Name = t }),
                // Bounded apart: a cluster that does not serve DescribeConfigs (librdkafka's mock) holds no round up for long.
                new DescribeConfigsOptions { RequestTimeout = TimeSpan.FromMilliseconds(Math.Min(Options.RequestTimeoutMs, 3_000)) }).ConfigureAwait(false);
            foreach (var result in results)
            {
                configs[result.ConfigResource.Name] = FromKafka(result.Entries);
            }
        }
        catch (KafkaException)
        {
            // Configs are looked up again next round; the topics are served with the configs last seen meanwhile.
        }
        return configs;
    }

    private TopicConfig FromKafka(Dictionary<string, ConfigEntryResult> entries)
    {
        long Long(string key, long fallback) =>
            entries.TryGetValue(key, out var entry) && long.TryParse(entry.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value) ? value : fallback;
        var defaults = Limits.TopicDefaults;
        return defaults with
        {
            RetentionMs = Long("retention.ms", defaults.RetentionMs) is var ms and > 0 ? ms : -1,
            RetentionBytes = Long("retention.bytes", defaults.RetentionBytes) is var bytes and > 0 ? bytes : -1,
            MaxRecordBytes = (int)Math.Clamp(Long("max.message.bytes", defaults.MaxRecordBytes), 1, Limits.MaxRecordBytesLimit),
        };
    }

    private static Dictionary<string, string> ToKafka(TopicConfig config) => new(StringComparer.Ordinal)
    {
        ["retention.ms"] = config.RetentionMs.ToString(CultureInfo.InvariantCulture),
        ["retention.bytes"] = config.RetentionBytes.ToString(CultureInfo.InvariantCulture),
        ["max.message.bytes"] = config.MaxRecordBytes.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// A topic's own default acks (HTTP's <c>config.acks</c>) has no place in a Kafka cluster: it refuses topic configs
    /// it does not know, and a node's memory is no place for it (every node must answer alike). Per request it is given.
    /// </summary>
    private void RefuseTopicAcks(TopicConfig config)
    {
        if (config.Acks != Limits.TopicDefaults.Acks)
        {
            throw new NotSupportedByBackendException("topicAcks", $"The kafka backend keeps no acks per topic (a Kafka cluster refuses topic configs it does not know): leave config.acks at the server's default ({Limits.TopicDefaults.Acks.ToString().ToLowerInvariant()}) and give ?acks= with each produce request.");
        }
    }

    private StorageFailureException Failed(string what, string topic, KafkaException ex) =>
        new($"The Kafka cluster at {Options.BootstrapServers} failed to {what} '{topic}': {ex.Error.Reason} ({ex.Error.Code}).", ex);
}
