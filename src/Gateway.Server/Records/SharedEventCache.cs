using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Gateway.Server.Streaming;
using Gateway.Storage;
using Gateway.Storage.Records;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Records;

/// <summary>
/// Record JSON encoded once and shared by every reader of the same offsets — SSE subscribers and fetches from the
/// tail: a ring per partition of the most recent records read (<see cref="StreamingOptions.SharedEventsPerPartition"/>),
/// made only for partitions that are read. Keyed by the partition object, so a re-created topic never serves old bytes.
/// Records are immutable once committed, and only committed records are ever read, so an entry never goes stale.
/// </summary>
public sealed class SharedEventCache(IOptions<StreamingOptions> options)
{
    /// <summary>Records whose JSON is larger are encoded for each reader instead of kept.</summary>
    public const int MaxSharedBytes = 64 * 1024;

    private readonly ConditionalWeakTable<IPartition, Ring> _rings = [];
    private readonly int _size = options.Value.SharedEventsPerPartition;

    /// <summary>How many of the most recent offsets of a partition are worth keeping (0: sharing is off).</summary>
    public int RecordsPerPartition => _size;

    /// <summary>The record's JSON, from the ring or encoded now (and kept for the next reader).</summary>
    public byte[] Get(IPartition partition, JsonEncodedText topic, LogRecord record)
    {
        if (_size == 0)
        {
            return Encode(topic, partition.Partition, record);
        }
        var ring = _rings.GetValue(partition, _ => new Ring(_size));
        return ring.TryGet(record.Offset) ?? Keep(ring, record, Encode(topic, partition.Partition, record));
    }

    /// <summary>
    /// The answer to a fetch from <paramref name="start"/> if every record it would hold is in the ring: the same
    /// records, limits and offsets <see cref="IPartition.ReadAsync"/> would give. False sends the fetch to the log.
    /// </summary>
    public bool TryCollect(IPartition partition, long start, int maxRecords, int maxBytes, out CachedRecords records)
    {
        records = default;
        if (_size == 0 || partition.Failure is not null || !_rings.TryGetValue(partition, out var ring))
        {
            return false;
        }
        long begin = partition.BeginOffset, end = partition.EndOffset;
        if (start < begin || start >= end)
        {
            return false;
        }
        return ring.TryCollect(start, end, maxRecords, maxBytes, begin, out records);
    }

    private static byte[] Keep(Ring ring, LogRecord record, byte[] json) =>
        json.Length <= MaxSharedBytes ? ring.Put(record.Offset, json, record.EncodedSize) : json;

    private static byte[] Encode(JsonEncodedText topic, int partition, LogRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, RecordJson.WriterOptions))
        {
            RecordJson.Write(writer, topic, partition, record);
        }
        return buffer.WrittenSpan.ToArray();
    }

    private sealed class Ring(int size)
    {
        private readonly Lock _lock = new();
        private readonly long[] _offsets = Enumerable.Repeat(-1L, size).ToArray();
        private readonly byte[]?[] _events = new byte[size][];
        private readonly int[] _sizes = new int[size];

        public byte[]? TryGet(long offset)
        {
            int slot = (int)(offset % _offsets.Length);
            lock (_lock)
            {
                return _offsets[slot] == offset ? _events[slot] : null;
            }
        }

        public byte[] Put(long offset, byte[] json, int encodedSize)
        {
            int slot = (int)(offset % _offsets.Length);
            lock (_lock)
            {
                _offsets[slot] = offset;
                _events[slot] = json;
                _sizes[slot] = encodedSize;
            }
            return json;
        }

        public bool TryCollect(long start, long end, int maxRecords, int maxBytes, long begin, out CachedRecords records)
        {
            records = default;
            lock (_lock)
            {
                // Counted first, so that a miss (a reader behind the ring) allocates nothing.
                int count = 0;
                long bytes = 0;
                for (long offset = start; offset < end && count < maxRecords; offset++, count++)
                {
                    int slot = (int)(offset % _offsets.Length);
                    if (_offsets[slot] != offset)
                    {
                        return false;
                    }
                    if (count > 0 && bytes + _sizes[slot] > maxBytes)
                    {
                        break;
                    }
                    bytes += _sizes[slot];
                }
                var json = new byte[count][];
                for (int i = 0; i < count; i++)
                {
                    json[i] = _events[(int)((start + i) % _offsets.Length)]!;
                }
                records = new CachedRecords(json, start + count, bytes, begin, end);
                return true;
            }
        }
    }
}

/// <summary>A fetch answered from <see cref="SharedEventCache"/>: each record's JSON, and the offsets of the answer.</summary>
public readonly record struct CachedRecords(byte[][] Json, long NextOffset, long Bytes, long BeginOffset, long EndOffset);
