using System.Buffers;
using System.Buffers.Binary;

namespace Gateway.KafkaProtocol.Protocol;

/// <summary>
/// One request frame (without its size), copied into a pooled buffer that lives until the request is answered:
/// the header parsed, the body left for its API to read.
/// </summary>
public sealed class KafkaRequest : IDisposable
{
    private byte[]? _buffer;
    private readonly int _length;
    private readonly int _bodyStart;

    private KafkaRequest(byte[] buffer, int length, short key, short version, int correlationId, string? clientId, int bodyStart)
    {
        _buffer = buffer;
        _length = length;
        Key = key;
        Version = version;
        CorrelationId = correlationId;
        ClientId = clientId;
        _bodyStart = bodyStart;
    }

    public short Key { get; }

    public short Version { get; }

    public int CorrelationId { get; }

    public string? ClientId { get; }

    /// <summary>Set by a handler whose answer must be the connection's last (a failed authentication).</summary>
    public bool CloseAfterAnswer { get; set; }

    /// <summary>The connection it came on (set when it is handed to the broker).</summary>
    public KafkaClientInfo? Client { get; internal set; }

    /// <summary>The body, after the header.</summary>
    public ReadOnlyMemory<byte> Body => _buffer.AsMemory(_bodyStart, _length - _bodyStart);

    /// <summary>Copies a frame and parses its header: v1 (key, version, correlation id, client id), plus tagged fields (v2) for flexible versions.</summary>
    public static KafkaRequest Parse(ReadOnlySequence<byte> frame)
    {
        int length = (int)frame.Length;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            frame.CopyTo(buffer);
            var reader = new KafkaReader(buffer.AsSpan(0, length));
            short key = reader.ReadInt16();
            short version = reader.ReadInt16();
            int correlationId = reader.ReadInt32();
            string? clientId = reader.ReadNullableString();
            if (SupportedApis.IsFlexible(key, version))
            {
                reader.SkipTaggedFields();
            }
            return new KafkaRequest(buffer, length, key, version, correlationId, clientId, reader.Position);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>The correlation id of a frame whose header does not parse, if its first 8 bytes are there (to log it).</summary>
    public static int? PeekCorrelationId(ReadOnlySpan<byte> frame) => frame.Length >= 8 ? BinaryPrimitives.ReadInt32BigEndian(frame[4..]) : null;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
