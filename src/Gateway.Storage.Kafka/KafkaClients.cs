using System.Collections.Concurrent;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage.Kafka;

/// <summary>
/// The node's clients of the cluster, shared by every request: one admin client, two producers (acks=all with
/// idempotence for <c>acks=disk</c>, acks=1 for <c>acks=memory</c>), and a pool of assign-only consumers for reads and
/// offset lookups — never one per HTTP request or per reader kept open.
/// </summary>
internal sealed partial class KafkaClients : IDisposable
{
    private readonly KafkaBackendOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentBag<IConsumer<byte[]?, byte[]?>> _readers = new();
    private readonly SemaphoreSlim _readerSlots;
    private int _readerCount;
    private bool _disposed;

    public const int MaxReaders = 8;

    public KafkaClients(KafkaBackendOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _readerSlots = new SemaphoreSlim(MaxReaders, MaxReaders);
        Admin = new AdminClientBuilder(Configure(new AdminClientConfig())).SetLogHandler((_, m) => Log(m)).Build();
        Durable = new ProducerBuilder<byte[]?, byte[]?>(Configure(new ProducerConfig
        {
            Acks = Confluent.Kafka.Acks.All,
            EnableIdempotence = true,
            LingerMs = 1,
            MessageTimeoutMs = options.RequestTimeoutMs,
            DeliveryReportFields = "none", // an append needs each record's offset and error, not its headers copied back
        })).SetLogHandler((_, m) => Log(m)).Build();
        Fast = new ProducerBuilder<byte[]?, byte[]?>(Configure(new ProducerConfig
        {
            Acks = Confluent.Kafka.Acks.Leader,
            LingerMs = 1,
            MessageTimeoutMs = options.RequestTimeoutMs,
            DeliveryReportFields = "none",
        })).SetLogHandler((_, m) => Log(m)).Build();
    }

    public IAdminClient Admin { get; }

    /// <summary>acks=all, idempotent: what <c>acks=disk</c> asks.</summary>
    public IProducer<byte[]?, byte[]?> Durable { get; }

    /// <summary>acks=1: what <c>acks=memory</c> asks.</summary>
    public IProducer<byte[]?, byte[]?> Fast { get; }

    public TimeSpan RequestTimeout => TimeSpan.FromMilliseconds(_options.RequestTimeoutMs);

    /// <summary>
    /// A partition's low and high watermarks, asked again (with the topic's metadata asked first) while the cluster is
    /// between leaders (a broker just went down or came back and the client's metadata names no leader yet), up to the
    /// request timeout.
    /// Blocks: call it inside <see cref="WithReaderAsync{T}"/>.
    /// </summary>
    public WatermarkOffsets QueryWatermarks(IConsumer<byte[]?, byte[]?> reader, Confluent.Kafka.TopicPartition partition)
    {
        long deadline = Environment.TickCount64 + _options.RequestTimeoutMs;
        while (true)
        {
            long left = deadline - Environment.TickCount64;
            try
            {
                return reader.QueryWatermarkOffsets(partition, TimeSpan.FromMilliseconds(Math.Max(left, 1)));
            }
            catch (KafkaException ex) when (LeaderMoving(ex.Error.Code) && deadline - Environment.TickCount64 > 2 * LeaderRetryMs)
            {
                // The client takes a partition without a leader in its metadata for a lasting error and asks again only
                // at its next metadata round (minutes): ask for the topic's metadata now, then try again.
                Thread.Sleep(LeaderRetryMs);
                try
                {
                    using var metadata = new DependentAdminClientBuilder(reader.Handle).Build();
                    metadata.GetMetadata(partition.Topic, TimeSpan.FromMilliseconds(Math.Max(deadline - Environment.TickCount64, 1)));
                }
                catch (KafkaException)
                {
                    // still moving: the next try says
                }
            }
        }
    }

    private const int LeaderRetryMs = 100;

    private static bool LeaderMoving(ErrorCode code) => code is ErrorCode.Local_UnknownPartition or ErrorCode.LeaderNotAvailable
        or ErrorCode.NotLeaderForPartition or ErrorCode.Local_Transport or ErrorCode.Local_AllBrokersDown or ErrorCode.Local_Outdated;

    /// <summary>Runs <paramref name="use"/> with a pooled consumer (assigned nothing before and after), on a pool thread: its calls block.</summary>
    public async Task<T> WithReaderAsync<T>(Func<IConsumer<byte[]?, byte[]?>, T> use, CancellationToken cancellationToken)
    {
        await _readerSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() =>
            {
                var reader = _readers.TryTake(out var pooled) ? pooled : NewReader();
                bool healthy = true;
                try
                {
                    return use(reader);
                }
                catch (Exception ex) when (ex is KafkaException or StorageFailureException)
                {
                    healthy = false;
                    throw;
                }
                finally
                {
                    try
                    {
                        reader.Unassign();
                    }
                    catch (KafkaException)
                    {
                        healthy = false;
                    }
                    if (healthy)
                    {
                        _readers.Add(reader);
                        if (Volatile.Read(ref _disposed))
                        {
                            // Given back after the clients were closed: closed here, never left to the finalizer
                            // (a consumer finalized without being closed can take the process down in librdkafka).
                            DisposeReaders();
                        }
                    }
                    else
                    {
                        // Not given back after a failure: a client that lost a partition's leader may keep metadata
                        // that says the partition does not exist until its next periodic refresh (minutes).
                        reader.Dispose();
                        Interlocked.Decrement(ref _readerCount);
                    }
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _readerSlots.Release();
        }
    }

    public void Dispose()
    {
        foreach (var producer in new[] { Durable, Fast })
        {
            producer.Flush(TimeSpan.FromSeconds(5));
            producer.Dispose();
        }
        Volatile.Write(ref _disposed, true);
        DisposeReaders();
        Admin.Dispose();
    }

    private void DisposeReaders()
    {
        while (_readers.TryTake(out var reader))
        {
            reader.Dispose();
        }
    }

    private IConsumer<byte[]?, byte[]?> NewReader()
    {
        Interlocked.Increment(ref _readerCount);
        return NewConsumer("gateway-readers", fetchWaitMaxMs: 10);
    }

    /// <summary>An assign-only consumer: <paramref name="groupId"/> is never joined and nothing is committed under it.</summary>
    public IConsumer<byte[]?, byte[]?> NewConsumer(string groupId, int fetchWaitMaxMs) =>
        new ConsumerBuilder<byte[]?, byte[]?>(Configure(new ConsumerConfig
        {
            GroupId = groupId,
            EnableAutoCommit = false,
            EnablePartitionEof = true,
            AutoOffsetReset = AutoOffsetReset.Error,
            FetchWaitMaxMs = fetchWaitMaxMs,
            QueuedMaxMessagesKbytes = 8 * 1024,
            SessionTimeoutMs = Math.Max(6_000, Math.Min(_options.RequestTimeoutMs, 45_000)),
        })).SetLogHandler((_, m) => Log(m)).Build();

    /// <summary>librdkafka's own lines (a broker unreachable, a leader moved) through the server's logging, at their level.</summary>
    private void Log(LogMessage message)
    {
        var level = message.Level switch
        {
            SyslogLevel.Emergency or SyslogLevel.Alert or SyslogLevel.Critical => LogLevel.Critical,
            SyslogLevel.Error => LogLevel.Error,
            SyslogLevel.Warning => LogLevel.Warning,
            SyslogLevel.Notice or SyslogLevel.Info => LogLevel.Information,
            _ => LogLevel.Debug,
        };
        LogClient(_logger, level, message.Name, message.Facility, message.Message);
    }

    [LoggerMessage(EventId = 319, Message = "Kafka client {Client} ({Facility}): {Text}")]
    private static partial void LogClient(ILogger logger, LogLevel level, string client, string facility, string text);

    private T Configure<T>(T config)
        where T : ClientConfig
    {
        config.BootstrapServers = _options.BootstrapServers;
        config.ClientId = "gateway";
        foreach (var (key, value) in _options.Client)
        {
            config.Set(key, value);
        }
        return config;
    }
}
