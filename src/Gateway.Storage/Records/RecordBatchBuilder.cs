using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Gateway.Storage.Records;

/// <summary>
/// Encodes records into one Kafka v2 record batch in a pooled buffer. The base offset is left for the log to
/// assign at append time (it lies outside the CRC); everything else, CRC included, is final after <see cref="Seal"/>.
/// </summary>
public sealed class RecordBatchBuilder : IDisposable
{
    private byte[] _buffer;
    private int _length = BatchLayout.HeaderSize;
    private long _baseTimestamp;
    private long _maxTimestamp = long.MinValue;
    private bool _sealed;
    private IdempotencyStamp? _stamp;

    public RecordBatchBuilder(int initialCapacity = 1024)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initialCapacity, BatchLayout.HeaderSize + 64));
    }

    /// <summary>
    /// A sealed builder holding a copy of a batch a Kafka producer sent, checked by <see cref="IncomingBatch.Validate"/>:
    /// stored as it is (its CRC covers everything but the base offset and the leader epoch, which the log sets).
    /// </summary>
    public static RecordBatchBuilder FromValidatedBatch(ReadOnlySpan<byte> batch)
    {
        var builder = new RecordBatchBuilder(batch.Length);
        batch.CopyTo(builder._buffer);
        builder._length = batch.Length;
        builder.Count = BinaryPrimitives.ReadInt32BigEndian(batch[BatchLayout.RecordsCount..]);
        builder._baseTimestamp = BinaryPrimitives.ReadInt64BigEndian(batch[BatchLayout.BaseTimestamp..]);
        builder._maxTimestamp = BinaryPrimitives.ReadInt64BigEndian(batch[BatchLayout.MaxTimestamp..]);
        BinaryPrimitives.WriteInt32BigEndian(builder._buffer.AsSpan(BatchLayout.PartitionLeaderEpoch), -1);
        builder.Producer = RecordBatch.ProducerOf(batch);
        builder._sealed = true;
        return builder;
    }

    /// <summary>Records added so far.</summary>
    public int Count { get; private set; }

    /// <summary>Size of the encoded batch so far, header included.</summary>
    public int SizeInBytes => _length;

    /// <summary>Largest timestamp of the records added.</summary>
    public long MaxTimestamp => _maxTimestamp;

    /// <summary>Encoded size of the last record added, as fetch's <c>maxBytes</c> counts it.</summary>
    public int LastRecordSize { get; private set; }

    /// <summary>
    /// The offset of each record once appended, set by a backend whose offsets for one append may not be consecutive
    /// (a Kafka cluster where other writers' records can land in between); null when they are the first record's offset
    /// plus each one's position, as the embedded log's always are.
    /// </summary>
    public IReadOnlyList<long>? AppendedOffsets { get; set; }

    /// <summary>Appends one record. Timestamps are epoch milliseconds and need not be ordered.</summary>
    public void Add(long timestamp, Payload key, Payload value, IReadOnlyList<RecordHeader>? headers)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        if (_sealed)
        {
            throw new InvalidOperationException("The batch is sealed.");
        }
        if (Count == 0)
        {
            _baseTimestamp = timestamp;
        }
        long timestampDelta = timestamp - _baseTimestamp;
        int offsetDelta = Count;

        int headersSize = Varint.SizeOf(headers?.Count ?? 0);
        if (headers is not null)
        {
            foreach (var header in headers)
            {
                int nameBytes = Encoding.UTF8.GetByteCount(header.Name);
                headersSize += Varint.SizeOf(nameBytes) + nameBytes;
                headersSize += header.Value is null ? 1 : Varint.SizeOf(header.Value.Length) + header.Value.Length;
            }
        }
        int bodySize = 1 + Varint.SizeOf(timestampDelta) + Varint.SizeOf(offsetDelta) + key.EncodedSize + value.EncodedSize + headersSize;
        int recordSize = Varint.SizeOf(bodySize) + bodySize;
        EnsureCapacity(recordSize);

        Span<byte> span = _buffer.AsSpan(_length, recordSize);
        int p = Varint.Write(span, bodySize);
        span[p++] = (byte)(((int)key.Format << BatchLayout.KeyFormatShift) | ((int)value.Format << BatchLayout.ValueFormatShift));
        p += Varint.Write(span[p..], timestampDelta);
        p += Varint.Write(span[p..], offsetDelta);
        p += WritePayload(span[p..], key);
        p += WritePayload(span[p..], value);
        p += Varint.Write(span[p..], headers?.Count ?? 0);
        if (headers is not null)
        {
            foreach (var header in headers)
            {
                int nameBytes = Encoding.UTF8.GetByteCount(header.Name);
                p += Varint.Write(span[p..], nameBytes);
                p += Encoding.UTF8.GetBytes(header.Name, span[p..]);
                if (header.Value is null)
                {
                    p += Varint.Write(span[p..], -1);
                }
                else
                {
                    p += Varint.Write(span[p..], header.Value.Length);
                    header.Value.CopyTo(span[p..]);
                    p += header.Value.Length;
                }
            }
        }

        _length += recordSize;
        _maxTimestamp = Math.Max(_maxTimestamp, timestamp);
        LastRecordSize = recordSize;
        Count++;
    }

    /// <summary>Writes the header and CRC. The batch can no longer change, except for its base offset.</summary>
    /// <summary>The idempotency stamp, if the batch carries one.</summary>
    public IdempotencyStamp? Stamp => _stamp;

    /// <summary>The Kafka idempotent producer that sent a batch taken as it is (<see cref="FromValidatedBatch"/>), if any.</summary>
    public ProducerBatch? Producer { get; private set; }

    /// <summary>Stamps the batch as the append of an idempotent request, before it is sealed.</summary>
    public void MarkIdempotent(IdempotencyStamp stamp)
    {
        if (_sealed)
        {
            throw new InvalidOperationException("The batch is sealed.");
        }
        // Below the limit the header's producer fields name a Kafka producer.
        ArgumentOutOfRangeException.ThrowIfLessThan(stamp.ProducerId, ProducerBatch.ProducerIdLimit);
        _stamp = stamp;
    }

    public void Seal()
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("A batch holds at least one record.");
        }
        if (_sealed)
        {
            return;
        }
        Span<byte> header = _buffer.AsSpan(0, BatchLayout.HeaderSize);
        BinaryPrimitives.WriteInt64BigEndian(header[BatchLayout.BaseOffset..], 0);
        BinaryPrimitives.WriteInt32BigEndian(header[BatchLayout.BatchLength..], _length - BatchLayout.LengthFieldEnd);
        BinaryPrimitives.WriteInt32BigEndian(header[BatchLayout.PartitionLeaderEpoch..], -1);
        header[BatchLayout.Magic] = BatchLayout.CurrentMagic;
        BinaryPrimitives.WriteInt16BigEndian(header[BatchLayout.Attributes..], 0);
        BinaryPrimitives.WriteInt32BigEndian(header[BatchLayout.LastOffsetDelta..], Count - 1);
        BinaryPrimitives.WriteInt64BigEndian(header[BatchLayout.BaseTimestamp..], _baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(header[BatchLayout.MaxTimestamp..], _maxTimestamp);
        if (_stamp is { } stamp)
        {
            BinaryPrimitives.WriteInt64BigEndian(header[BatchLayout.ProducerId..], stamp.ProducerId);
            BinaryPrimitives.WriteInt16BigEndian(header[BatchLayout.ProducerEpoch..], (short)(stamp.RequestHash >> 32));
            BinaryPrimitives.WriteInt32BigEndian(header[BatchLayout.BaseSequence..], (int)stamp.RequestHash);
        }
        else
        {
            BinaryPrimitives.WriteInt64BigEndian(header[BatchLayout.ProducerId..], -1);
            BinaryPrimitives.WriteInt16BigEndian(header[BatchLayout.ProducerEpoch..], -1);
            BinaryPrimitives.WriteInt32BigEndian(header[BatchLayout.BaseSequence..], -1);
        }
        BinaryPrimitives.WriteInt32BigEndian(header[BatchLayout.RecordsCount..], Count);
        uint crc = Crc32C.Compute(_buffer.AsSpan(BatchLayout.CrcStart, _length - BatchLayout.CrcStart));
        BinaryPrimitives.WriteUInt32BigEndian(header[BatchLayout.Crc..], crc);
        _sealed = true;
    }

    /// <summary>The sealed batch, with the base offset patched in by the log.</summary>
    internal Span<byte> SealedBatch(long baseOffset)
    {
        if (!_sealed)
        {
            throw new InvalidOperationException("Seal the batch before appending it.");
        }
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        Span<byte> batch = _buffer.AsSpan(0, _length);
        BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);
        return batch;
    }

    /// <summary>The sealed batch as memory (its base offset patched in), valid until the builder is disposed.</summary>
    internal ReadOnlyMemory<byte> SealedMemory(long baseOffset)
    {
        SealedBatch(baseOffset);
        return _buffer.AsMemory(0, _length);
    }

    public void Dispose() => ReturnBuffer();

    /// <summary>
    /// Gives the buffer back to the pool once the log holds its own copy of the sealed batch, so a request waiting for
    /// its commit holds none: 64 durable requests of 100 records each held 128 KB, more than the shared pool keeps,
    /// and every miss allocated a fresh array on the large object heap. Count, size and timestamps stay readable.
    /// </summary>
    internal void ReturnBuffer()
    {
        if (_buffer.Length != 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }

    private static int WritePayload(Span<byte> destination, Payload payload)
    {
        if (payload.IsNull)
        {
            return Varint.Write(destination, -1);
        }
        int p = Varint.Write(destination, payload.Bytes.Length);
        payload.Bytes.CopyTo(destination[p..]);
        return p + payload.Bytes.Length;
    }

    private void EnsureCapacity(int extra)
    {
        if (_length + extra <= _buffer.Length)
        {
            return;
        }
        byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + extra));
        _buffer.AsSpan(0, _length).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }
}
