using System.Buffers;

namespace Gateway.Server.Hosting;

/// <summary>
/// A body in pooled memory. A response built here is sent with a Content-Length in one write: Kestrel frames a body
/// of unknown length in chunks, one per buffer the JSON writer fills, and for large fetch answers that framing cost
/// more than encoding the records did (figures: docs/storage.md). A produce request's body is read whole into one
/// (see <c>ProduceBodyReader</c>), instead of an array of its own per request.
/// </summary>
internal sealed class PooledBody : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _written;

    public PooledBody(int sizeHint) => _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(sizeHint, 4096));

    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _written);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    /// <summary>Sends what was written as the whole response body.</summary>
    public async Task SendAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        response.ContentLength = _written;
        await response.BodyWriter.WriteAsync(Written, cancellationToken);
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private void Ensure(int sizeHint)
    {
        int needed = _written + Math.Max(sizeHint, 1);
        if (needed > _buffer.Length)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
            _buffer.AsSpan(0, _written).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
    }
}

/// <summary>Helpers to send a body through <see cref="PooledBody"/>.</summary>
internal static class PooledBodyExtensions
{
    /// <summary>Runs <paramref name="write"/> into pooled memory, then sends it with a Content-Length.</summary>
    public static async Task SendPooledAsync(this HttpResponse response, int sizeHint, Action<IBufferWriter<byte>> write, CancellationToken cancellationToken)
    {
        using var body = new PooledBody(sizeHint);
        write(body);
        await body.SendAsync(response, cancellationToken);
    }
}
