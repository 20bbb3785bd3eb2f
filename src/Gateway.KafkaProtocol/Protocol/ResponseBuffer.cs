using System.Buffers;
using System.Buffers.Binary;

namespace Gateway.KafkaProtocol.Protocol;

/// <summary>
/// One response frame in a pooled, growing buffer: the size (filled in by <see cref="Complete"/>), the response
/// header, the body. Returned to the pool once written to the connection.
/// </summary>
public sealed class ResponseBuffer : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _length;

    /// <summary>Starts a response with header v0 (the correlation id); flexible versions' header v1 adds empty tagged fields.</summary>
    public ResponseBuffer(int correlationId, bool flexibleHeader, int initialSize = 256)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initialSize, 64));
        _length = 4; // the size, filled in last
        BinaryPrimitives.WriteInt32BigEndian(GetSpan(4), correlationId);
        Advance(4);
        if (flexibleHeader)
        {
            GetSpan(1)[0] = 0;
            Advance(1);
        }
    }

    /// <summary>Whether the connection closes once this answer is written (a refused request or credential).</summary>
    public bool CloseConnectionAfter { get; set; }

    /// <summary>The frame, its size field set.</summary>
    public ReadOnlyMemory<byte> Complete()
    {
        BinaryPrimitives.WriteInt32BigEndian(_buffer, _length - 4);
        return _buffer.AsMemory(0, _length);
    }

    public void Advance(int count) => _length += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_length);
    }

    public void Dispose()
    {
        if (_buffer.Length != 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }

    private void Ensure(int sizeHint)
    {
        int needed = _length + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }
        byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, _length).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }
}
