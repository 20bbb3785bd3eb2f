using System.Globalization;
using System.Text.Json;
using Gateway.Log.Device;
using Gateway.Storage;

namespace Gateway.Log;

/// <summary>
/// A topic: its settings (persisted atomically in <c>topic.json</c>) and its partitions, which can grow but never
/// shrink. Partition numbers are dense from 0.
/// </summary>
public sealed class TopicLog : ITopic
{
    private readonly string _directory;
    private readonly LogStoreOptions _options;
    private readonly PartitionServices _services;
    private readonly Lock _lock = new();
    private PartitionLog[] _partitions;
    private TopicMetadata _metadata;
    private uint _stickyCounter;

    private TopicLog(TopicMetadata metadata, string directory, LogStoreOptions options, PartitionServices services, bool create)
    {
        _metadata = metadata;
        _directory = directory;
        _options = options;
        _services = services;
        _partitions = new PartitionLog[metadata.Partitions];
        OpenPartitions(_partitions, 0, create);
    }

    public string Name => _metadata.Name;

    public TopicConfig Config => Volatile.Read(ref _metadata).Config;

    /// <summary>Creation time, epoch milliseconds.</summary>
    public long CreatedAt => _metadata.CreatedAt;

    public int PartitionCount => Volatile.Read(ref _partitions).Length;

    public IReadOnlyList<PartitionLog> Partitions => Volatile.Read(ref _partitions);

    /// <summary>The partition, or <see cref="PartitionNotFoundException"/>.</summary>
    IReadOnlyList<IPartition> ITopic.Partitions => Partitions;

    IPartition ITopic.GetPartition(int partition) => GetPartition(partition);

    public PartitionLog GetPartition(int partition)
    {
        var partitions = Volatile.Read(ref _partitions);
        if ((uint)partition >= (uint)partitions.Length)
        {
            throw new PartitionNotFoundException(Name, partition, partitions.Length);
        }
        return partitions[partition];
    }

    /// <summary>
    /// Partition for records without a key: each request's keyless records go to one partition (one batch, like
    /// Kafka's sticky partitioner), and successive requests take the partitions in turn, so load spreads evenly.
    /// </summary>
    public int NextStickyPartition() => (int)(Interlocked.Increment(ref _stickyCounter) % (uint)PartitionCount);

    internal static TopicLog Create(string name, int partitions, TopicConfig config, string directory, LogStoreOptions options, PartitionServices services, long now)
    {
        DirectorySync.CreateDirectory(directory);
        var metadata = new TopicMetadata(name, partitions, config, now);
        // Partitions first, topic.json last: a crash in between leaves a folder without topic.json, which start-up removes.
        var topic = new TopicLog(metadata, directory, options, services, create: true);
        topic.SaveMetadata(metadata);
        return topic;
    }

    /// <summary>
    /// Opens a topic from its folder. A <c>topic.json</c> that cannot be read, or holds a setting out of its range
    /// (an <c>acks</c> that is neither name, say), is a <see cref="LogCorruptedException"/> naming the file and key:
    /// the topic is refused rather than served with weaker settings than were asked for.
    /// </summary>
    internal static TopicLog Load(string directory, LogStoreOptions options, PartitionServices services)
    {
        string path = Path.Combine(directory, MetadataFile);
        TopicMetadata metadata;
        try
        {
            metadata = JsonSerializer.Deserialize(File.ReadAllBytes(path), LogJsonContext.Default.TopicMetadata)
                ?? throw new LogCorruptedException($"{path} is empty.");
        }
        catch (JsonException ex)
        {
            throw new LogCorruptedException($"{path} cannot be read at {ex.Path ?? "$"}: {JsonProblem(ex)}", ex);
        }
        if (metadata.Config is null || metadata.Name is null || metadata.Partitions < 1)
        {
            throw new LogCorruptedException($"{path} lacks its name, its partition count or its config.");
        }
        // The record size is checked against the pages only where it is set: a topic kept across a change of page
        // size is not damaged, and its appends are still bounded by the pages.
        if (metadata.Config.ValidationError(maxRecordBytesLimit: int.MaxValue) is var (key, problem))
        {
            throw new LogCorruptedException($"{path} has an invalid {key}: {problem}");
        }
        return new TopicLog(metadata, directory, options, services, create: false);
    }

    /// <summary>The reason of a JSON reader's or converter's failure, without .NET's type names and position suffix.</summary>
    private static string JsonProblem(JsonException ex) =>
        ex.InnerException is null && ex.Message.Contains("could not be converted", StringComparison.Ordinal)
            ? "a value of the wrong type, or one outside its allowed values."
            : ex.Message.Split(" Path:", 2)[0];

    internal const string MetadataFile = "topic.json";

    /// <summary>Changes settings and/or grows the partition count; never shrinks it.</summary>
    internal void Update(TopicConfig? config, int? partitions)
    {
        lock (_lock)
        {
            var current = _metadata;
            int count = partitions ?? current.Partitions;
            if (count < current.Partitions)
            {
                throw new ArgumentOutOfRangeException(nameof(partitions), $"Topic '{Name}' has {current.Partitions} partitions; partitions can be added, never removed.");
            }
            var grown = _partitions;
            if (count > current.Partitions)
            {
                grown = new PartitionLog[count];
                _partitions.CopyTo(grown, 0);
                OpenPartitions(grown, current.Partitions, create: true);
            }
            var updated = current with { Partitions = count, Config = config ?? current.Config };
            SaveMetadata(updated);
            Volatile.Write(ref _metadata, updated);
            Volatile.Write(ref _partitions, grown);
        }
    }

    internal async ValueTask CloseAsync()
    {
        foreach (var partition in Volatile.Read(ref _partitions))
        {
            await partition.DisposeAsync().ConfigureAwait(false);
        }
    }

    private const int MaxCreatingAtOnce = 16;

    /// <summary>
    /// Opens partitions <paramref name="from"/>.. of <paramref name="partitions"/> side by side: they are independent,
    /// and most of the time goes to allocating each log's pages. The first failure is thrown as itself.
    /// </summary>
    private void OpenPartitions(PartitionLog[] partitions, int from, bool create)
    {
        try
        {
            // Making a partition waits mostly for the disk (its first commit record and rest marker are synced), so
            // more are made at once than there are cores; opening one at start is mostly allocation, so no more.
            int parallel = create ? Math.Max(Environment.ProcessorCount, MaxCreatingAtOnce) : Environment.ProcessorCount;
            Parallel.For(from, partitions.Length, new ParallelOptions { MaxDegreeOfParallelism = parallel }, p => partitions[p] = OpenPartition(p, create));
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
    }

    /// <summary>
    /// Opens a partition; with <paramref name="create"/> a new one: whatever an unfinished earlier attempt left in its
    /// folder goes (the topic's metadata never listed it), and it is committed once before the metadata names it.
    /// Without, a partition the metadata lists must have its files and commit record.
    /// </summary>
    private PartitionLog OpenPartition(int partition, bool create)
    {
        string directory = Path.Combine(_directory, partition.ToString(CultureInfo.InvariantCulture));
        if (create && Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
        return PartitionLog.Open(Name, partition, directory, _options, _services, create);
    }

    private void SaveMetadata(TopicMetadata metadata) =>
        AtomicFile.Write(Path.Combine(_directory, MetadataFile), JsonSerializer.SerializeToUtf8Bytes(metadata, LogJsonContext.Default.TopicMetadata));
}
