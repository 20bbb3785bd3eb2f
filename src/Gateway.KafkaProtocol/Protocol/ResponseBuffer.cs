using System.Buffers;
using System.Buffers.Binary;

namespace Gateway.KafkaProtocol.Protocol;

/// <summary>
/// One response frame in a pooled, growing buffer: the size (filled in by <see cref="WriteTo"/>), the response
/// header, the body. Large runs of stored bytes (a fetch's record batches) are not copied in but attached where they
/// go, and written from where they are; what holds them is released with the buffer, once written to the connection.
/// </summary>
public sealed class ResponseBuffer : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _length;
    private List<(int At, ReadOnlyMemory<byte> Bytes)>? _attached;
    private long _attachedBytes;
    private List<IDisposable>? _held;

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

    /// <summary>The frame's size, the size field included.</summary>
    public long Length => _length + _attachedBytes;

    /// <summary>
    /// Puts <paramref name="bytes"/> here without copying them; they must stay as they are until this buffer is
    /// disposed (<see cref="Hold"/> what owns them).
    /// </summary>
    public void Attach(ReadOnlyMemory<byte> bytes)
    {
        (_attached ??= []).Add((_length, bytes));
        _attachedBytes += bytes.Length;
    }

    /// <summary>Releases <paramref name="owner"/> when this buffer is disposed.</summary>
    public void Hold(IDisposable owner) => (_held ??= []).Add(owner);

    /// <summary>Writes the frame, its size field set, to <paramref name="output"/>.</summary>
    public void WriteTo(IBufferWriter<byte> output)
    {
        BinaryPrimitives.WriteInt32BigEndian(_buffer, checked((int)(Length - 4)));
        int written = 0;
        foreach (var (at, bytes) in _attached ?? [])
        {
            output.Write(_buffer.AsSpan(written, at - written));
            output.Write(bytes.Span);
            written = at;
        }
        output.Write(_buffer.AsSpan(written, _length - written));
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
        _attached = null;
        foreach (var owner in _held ?? [])
        {
            owner.Dispose();
        }
        _held = null;
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
