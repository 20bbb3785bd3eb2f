using System.Buffers.Binary;
using System.Net.Sockets;

namespace Gateway.Server.Tests.Kafka;

/// <summary>A Kafka connection spoken by hand: frames out, frames in.</summary>
internal sealed class RawKafkaClient(TcpClient tcp) : IDisposable
{
    private int _correlation;

    public NetworkStream Stream { get; } = tcp.GetStream();

    public static async Task<RawKafkaClient> ConnectAsync(string bootstrap)
    {
        var parts = bootstrap.Split(':');
        var tcp = new TcpClient();
        await tcp.ConnectAsync(parts[0], int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        return new RawKafkaClient(tcp);
    }

    /// <summary>Sends a whole frame as given (size included), for frames that lie about themselves.</summary>
    public Task SendRawAsync(byte[] frame) => Stream.WriteAsync(frame).AsTask();

    /// <summary>The next response frame (correlation id and body), or null when the connection closes or nothing comes within <paramref name="wait"/>.</summary>
    public async Task<byte[]?> TryReadAsync(TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            byte[] size = new byte[4];
            await Stream.ReadExactlyAsync(size, timeout.Token);
            byte[] frame = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
            await Stream.ReadExactlyAsync(frame, timeout.Token);
            return frame;
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    public async Task SendAsync(short key, short version, byte[] body, bool flexible)
    {
        var frame = new List<byte>();
        frame.AddRange([(byte)(key >> 8), (byte)key]);
        frame.AddRange([(byte)(version >> 8), (byte)version]);
        frame.AddRange(KafkaFrames.BigEndian(++_correlation));
        frame.AddRange([0x00, 0x04, .. "test"u8]);
        if (flexible)
        {
            frame.Add(0); // no tagged fields
        }
        frame.AddRange(body);
        await Stream.WriteAsync(KafkaFrames.BigEndian(frame.Count));
        await Stream.WriteAsync(frame.ToArray());
    }

    /// <summary>Sends a request and returns the response body (after the correlation id, which must match).</summary>
    public async Task<byte[]> RequestAsync(short key, short version, byte[] body, bool flexible)
    {
        await SendAsync(key, version, body, flexible);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        byte[] size = new byte[4];
        await Stream.ReadExactlyAsync(size, timeout.Token);
        byte[] frame = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
        await Stream.ReadExactlyAsync(frame, timeout.Token);
        Assert.Equal(_correlation, BinaryPrimitives.ReadInt32BigEndian(frame));
        return frame[4..];
    }

    /// <summary>Whether the server closes the connection (reads end) within 10 s.</summary>
    public async Task<bool> ClosedAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        byte[] buffer = new byte[256];
        try
        {
            while (await Stream.ReadAsync(buffer, timeout.Token) > 0)
            {
            }
            return true;
        }
        catch (IOException)
        {
            return true; // reset
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => tcp.Dispose();
}
