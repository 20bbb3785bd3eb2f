using System.Buffers;
using System.Buffers.Binary;
using System.Threading.Channels;
using Gateway.KafkaProtocol.Protocol;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gateway.KafkaProtocol;

/// <summary>
/// One Kafka client connection, hosted by Kestrel on the listener's endpoint. Frames are read as they arrive and
/// each request is handed to <see cref="KafkaBroker"/> at once (a client pipelines several: librdkafka keeps up to
/// five in flight), while the answers go out in request order, as Kafka promises. A frame that is too large or a header
/// that does not parse closes the connection, as a Kafka broker does; a request of an API or version this broker does
/// not serve is answered UNSUPPORTED_VERSION first, then the connection closes. Nothing of such a request is stored.
/// When the host requires SASL, only ApiVersions and the SASL requests are served before the connection has
/// authenticated (anything else: ILLEGAL_SASL_STATE, then closed).
/// </summary>
public sealed partial class KafkaConnectionHandler(KafkaBroker broker, IOptions<KafkaProtocolOptions> options, ILogger<KafkaConnectionHandler> logger) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var settings = options.Value;
        var cancel = connection.ConnectionClosed;
        var pending = Channel.CreateBounded<Task<ResponseBuffer?>>(new BoundedChannelOptions(Math.Max(1, settings.MaxInFlightRequests))
        {
            SingleReader = true,
            SingleWriter = true,
        });
        var client = new KafkaClientInfo(connection.ConnectionId, connection.LocalEndPoint, connection.RemoteEndPoint);
        var writing = WriteAsync(connection, pending.Reader, cancel);
        try
        {
            await ReadAsync(connection, client, pending.Writer, settings, cancel);
        }
        catch (MalformedRequestException ex)
        {
            Refuse(connection, ex);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ConnectionResetException or IOException)
        {
            // The client went away.
        }
        finally
        {
            pending.Writer.TryComplete();
        }
        await writing;
    }

    private void Refuse(ConnectionContext connection, MalformedRequestException ex)
    {
        LogRefused(logger, connection.ConnectionId, ex.Message);
        connection.Abort(new ConnectionAbortedException(ex.Message));
    }

    private async Task ReadAsync(ConnectionContext connection, KafkaClientInfo client, ChannelWriter<Task<ResponseBuffer?>> pending, KafkaProtocolOptions settings, CancellationToken cancel)
    {
        var input = connection.Transport.Input;
        var security = broker.Security;
        while (true)
        {
            long now = broker.Time.GetTimestamp();
            if (client.MutedUntil > now)
            {
                await Task.Delay(broker.Time.GetElapsedTime(now, client.MutedUntil), broker.Time, cancel); // over quota: the next requests wait
            }
            var result = await input.ReadAsync(cancel);
            if (result.IsCanceled)
            {
                input.AdvanceTo(result.Buffer.Start); // the writer refused a request and closes the connection
                return;
            }
            var buffer = result.Buffer;
            try
            {
                while (TryReadFrame(ref buffer, settings.MaxRequestBytes, out var frame))
                {
                    var request = KafkaRequest.Parse(frame);
                    if (!SupportedApis.Supports(request.Key, request.Version) && request.Key != (short)ApiKey.ApiVersions)
                    {
                        // Not served: answered UNSUPPORTED_VERSION (what ApiVersions answers a version it does not know,
                        // where most answers keep their error code), then closed, as a Kafka broker closes such a
                        // connection; the client is told rather than left waiting.
                        await pending.WriteAsync(Task.FromResult<ResponseBuffer?>(Refusal(request, ErrorCode.UnsupportedVersion)), cancel);
                        return;
                    }
                    if (security.SaslRequired && client.Principal is null
                        && (ApiKey)request.Key is not (ApiKey.ApiVersions or ApiKey.SaslHandshake or ApiKey.SaslAuthenticate))
                    {
                        // Before SASL authentication on a listener that requires it: ILLEGAL_SASL_STATE, then closed.
                        await pending.WriteAsync(Task.FromResult<ResponseBuffer?>(Refusal(request, ErrorCode.IllegalSaslState)), cancel);
                        return;
                    }
                    await pending.WriteAsync(broker.HandleAsync(request, client, cancel), cancel);
                }
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }

    /// <summary>The last answer of a connection: the request's correlation id and just an error code.</summary>
    private static ResponseBuffer Refusal(KafkaRequest request, short error)
    {
        using (request)
        {
            var refusal = new ResponseBuffer(request.CorrelationId, flexibleHeader: false) { CloseConnectionAfter = true };
            new KafkaWriter(refusal).WriteInt16(error);
            return refusal;
        }
    }

    /// <summary>Takes one complete frame (its size, then that many bytes) off the front of the buffer, if it is all there.</summary>
    private static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxBytes, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < 4)
        {
            return false;
        }
        Span<byte> prefix = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(prefix);
        int size = BinaryPrimitives.ReadInt32BigEndian(prefix);
        if (size < 8 || size > maxBytes)
        {
            throw new MalformedRequestException($"A request frame of {size} bytes (KafkaProtocol:MaxRequestBytes is {maxBytes}).");
        }
        if (buffer.Length < 4L + size)
        {
            return false;
        }
        frame = buffer.Slice(4, size);
        buffer = buffer.Slice(4L + size);
        return true;
    }

    /// <summary>
    /// Writes the answers in request order, flushing when none is ready behind the one written. A request whose body
    /// does not parse closes the connection here, which also ends the reading.
    /// </summary>
    private async Task WriteAsync(ConnectionContext connection, ChannelReader<Task<ResponseBuffer?>> pending, CancellationToken cancel)
    {
        var output = connection.Transport.Output;
        try
        {
            await foreach (var next in pending.ReadAllAsync(cancel))
            {
                var response = await next;
                bool last;
                using (response)
                {
                    if (response is null)
                    {
                        continue; // acks=0: no answer
                    }
                    response.WriteTo(output);
                    last = response.CloseConnectionAfter;
                }
                if (last)
                {
                    // Sent, then closed gracefully (an abort could drop the answer): reading stops, nothing more is written.
                    await output.FlushAsync(cancel);
                    LogRefused(logger, connection.ConnectionId, "a request was refused and answered with its error code (an API or version not served, a request before SASL authentication, or a refused credential)");
                    connection.Transport.Input.CancelPendingRead();
                    Drain(pending);
                    return;
                }
                if (!pending.TryPeek(out var following) || !following.IsCompleted)
                {
                    var flushed = await output.FlushAsync(cancel);
                    if (flushed.IsCompleted)
                    {
                        return;
                    }
                }
            }
            await output.FlushAsync(cancel);
        }
        catch (MalformedRequestException ex)
        {
            Refuse(connection, ex);
            Drain(pending);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ConnectionResetException or IOException)
        {
            Drain(pending);
        }
    }

    /// <summary>Lets the requests still queued finish and gives their buffers back; nobody reads their answers.</summary>
    private static void Drain(ChannelReader<Task<ResponseBuffer?>> pending)
    {
        while (pending.TryRead(out var next))
        {
            _ = next.ContinueWith(t => t.Result?.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        }
    }

    [LoggerMessage(EventId = 700, Level = LogLevel.Information, Message = "Kafka connection {ConnectionId} closed: {Reason}")]
    private static partial void LogRefused(ILogger logger, string connectionId, string reason);
}

/// <summary>What a request's handler knows of its connection: its id (for logs) and the address it came in on (for metadata).</summary>
public sealed record KafkaClientInfo(string ConnectionId, System.Net.EndPoint? LocalEndPoint, System.Net.EndPoint? RemoteEndPoint)
{
    /// <summary>Who the connection authenticated as (SASL), or null before (or without) authentication.</summary>
    public string? Principal { get; set; }

    /// <summary>The SASL mechanism the client chose in its handshake, or null before one.</summary>
    public string? SaslMechanism { get; set; }

    /// <summary>Until when (the clock's timestamp) the connection reads no further request: a principal over its quota.</summary>
    public long MutedUntil { get; private set; }

    /// <summary>Reads nothing more from the connection for <paramref name="duration"/> (no-op for zero).</summary>
    public void MuteFor(TimeSpan duration, TimeProvider time)
    {
        if (duration > TimeSpan.Zero)
        {
            MutedUntil = time.GetTimestamp() + (long)(duration.TotalSeconds * time.TimestampFrequency);
        }
    }

    /// <summary>The client's address as DescribeGroups shows it (<c>/127.0.0.1</c>, as Kafka writes it).</summary>
    public string RemoteHost => RemoteEndPoint is System.Net.IPEndPoint ip ? $"/{ip.Address}" : "";
}
