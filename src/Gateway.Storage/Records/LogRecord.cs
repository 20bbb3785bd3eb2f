using System.Text;

namespace Gateway.Storage.Records;

/// <summary>One stored record, viewed in place inside its batch. Valid only while the batch's bytes are.</summary>
public readonly ref struct LogRecord
{
    private readonly ReadOnlySpan<byte> _headers;

    internal LogRecord(
        long offset,
        long timestamp,
        PayloadFormat keyFormat,
        bool keyIsNull,
        ReadOnlySpan<byte> key,
        PayloadFormat valueFormat,
        bool valueIsNull,
        ReadOnlySpan<byte> value,
        int headerCount,
        ReadOnlySpan<byte> headers,
        int encodedSize)
    {
        Offset = offset;
        Timestamp = timestamp;
        KeyFormat = keyFormat;
        KeyIsNull = keyIsNull;
        Key = key;
        ValueFormat = valueFormat;
        ValueIsNull = valueIsNull;
        Value = value;
        HeaderCount = headerCount;
        _headers = headers;
        EncodedSize = encodedSize;
    }

    public long Offset { get; }

    public long Timestamp { get; }

    public PayloadFormat KeyFormat { get; }

    public bool KeyIsNull { get; }

    public ReadOnlySpan<byte> Key { get; }

    public PayloadFormat ValueFormat { get; }

    public bool ValueIsNull { get; }

    public ReadOnlySpan<byte> Value { get; }

    public int HeaderCount { get; }

    /// <summary>Bytes the record takes in its batch; fetch's <c>maxBytes</c> counts these.</summary>
    public int EncodedSize { get; }

    public HeaderEnumerator Headers => new(_headers, HeaderCount);

    /// <summary>Walks a record's headers in the order they were produced.</summary>
    public ref struct HeaderEnumerator
    {
        private readonly ReadOnlySpan<byte> _bytes;
        private readonly int _count;
        private int _position;
        private int _index;

        internal HeaderEnumerator(ReadOnlySpan<byte> bytes, int count)
        {
            _bytes = bytes;
            _count = count;
        }

        public RecordHeaderView Current { get; private set; }

        public readonly HeaderEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_index >= _count)
            {
                return false;
            }
            if (!Varint.TryRead(_bytes, ref _position, out long nameLength) || nameLength < 0 || _position + nameLength > _bytes.Length)
            {
                throw new LogCorruptedException("Malformed header name inside a batch whose CRC matched.");
            }
            string name = Encoding.UTF8.GetString(_bytes.Slice(_position, (int)nameLength));
            _position += (int)nameLength;
            if (!Varint.TryRead(_bytes, ref _position, out long valueLength) || valueLength < -1 || _position + valueLength > _bytes.Length)
            {
                throw new LogCorruptedException("Malformed header value inside a batch whose CRC matched.");
            }
            if (valueLength < 0)
            {
                Current = new RecordHeaderView(name, true, default);
            }
            else
            {
                Current = new RecordHeaderView(name, false, _bytes.Slice(_position, (int)valueLength));
                _position += (int)valueLength;
            }
            _index++;
            return true;
        }
    }
}
