using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Gateway.Log;
using Gateway.Log.Batches;
using Gateway.Server.Records;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Streaming;

/// <summary>
/// Record JSON encoded once and shared by every subscriber reading the same offsets: a small ring per partition
/// of the most recent records. Keyed by the partition object, so a re-created topic never serves old bytes.
/// </summary>
public sealed class SharedEventCache(IOptions<StreamingOptions> options)
{
    private readonly ConditionalWeakTable<PartitionLog, Ring> _rings = [];
    private readonly int _size = options.Value.SharedEventsPerPartition;

    /// <summary>The record's JSON, from the ring or encoded now (and kept for the next subscriber).</summary>
    public byte[] Get(PartitionLog partition, JsonEncodedText topic, LogRecord record)
    {
        if (_size == 0)
        {
            return Encode(topic, partition.Partition, record);
        }
        var ring = _rings.GetValue(partition, _ => new Ring(_size));
        return ring.TryGet(record.Offset) ?? ring.Put(record.Offset, Encode(topic, partition.Partition, record));
    }

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

        public byte[]? TryGet(long offset)
        {
            int slot = (int)(offset % _offsets.Length);
            lock (_lock)
            {
                return _offsets[slot] == offset ? _events[slot] : null;
            }
        }

        public byte[] Put(long offset, byte[] json)
        {
            int slot = (int)(offset % _offsets.Length);
            lock (_lock)
            {
                _offsets[slot] = offset;
                _events[slot] = json;
            }
            return json;
        }
    }
}
