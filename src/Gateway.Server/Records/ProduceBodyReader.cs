using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Unicode;
using Gateway.Server.Errors;
using Gateway.Server.Hosting;
using Gateway.Storage;
using Microsoft.Net.Http.Headers;

namespace Gateway.Server.Records;

/// <summary>
/// Reads a produce body into <see cref="ProduceBatches"/>: <c>application/json</c> (<c>{"records":[...]}</c>),
/// <c>application/x-ndjson</c> (one record object per line, read as it streams in), or any other type as one
/// record's value. Every record is checked (JSON, base64, UTF-8, sizes, partitions) before anything is appended.
/// </summary>
internal static class ProduceBodyReader
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    public enum BodyKind
    {
        Envelope,
        NdJson,
        Text,
        Json,
        Binary,
    }

    public static BodyKind Classify(string? contentType)
    {
        if (contentType is null || !MediaTypeHeaderValue.TryParse(contentType, out var media) || media.MediaType.Value is not { } type)
        {
            return BodyKind.Binary;
        }
        if (type.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return BodyKind.Envelope;
        }
        if (type.Equals("application/x-ndjson", StringComparison.OrdinalIgnoreCase) || type.Equals("application/jsonl", StringComparison.OrdinalIgnoreCase))
        {
            return BodyKind.NdJson;
        }
        if (type.StartsWith("text/", StringComparison.OrdinalIgnoreCase) || type.Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
        {
            // curl -d sends form-urlencoded: take it as the text it almost always is.
            return BodyKind.Text;
        }
        return type.EndsWith("+json", StringComparison.OrdinalIgnoreCase) ? BodyKind.Json : BodyKind.Binary;
    }

    /// <summary>Reads the whole body as one record's value; <paramref name="key"/> (text) and the partition come from the query.</summary>
    public static async Task ReadSingleAsync(PipeReader body, BodyKind kind, string? key, long? timestamp, int maxBytes, IRecordSink batches, IncrementalHash? hash, CancellationToken cancellationToken)
    {
        using var whole = await ReadAllAsync(body, maxBytes, "record_too_large", cancellationToken);
        var value = whole.Written.Span;
        hash?.AppendData(value);
        var format = kind switch
        {
            BodyKind.Text => PayloadFormat.Text,
            BodyKind.Json => PayloadFormat.Json,
            _ => PayloadFormat.Binary,
        };
        if (format != PayloadFormat.Binary && !Utf8.IsValid(value))
        {
            throw ApiException.BadRequest("invalid_utf8", "The body is declared as text or JSON but is not valid UTF-8.");
        }
        if (format == PayloadFormat.Json)
        {
            RecordJsonParser.ValidateJson(value);
        }
        byte[]? keyBytes = key is null ? null : System.Text.Encoding.UTF8.GetBytes(key);
        batches.Add(null, timestamp, keyBytes is null ? Payload.Null : new Payload(keyBytes, PayloadFormat.Text), new Payload(value, format), null);
    }

    /// <summary>Reads <c>{"records":[...]}</c>.</summary>
    public static async Task ReadEnvelopeAsync(PipeReader body, int maxBytes, IRecordSink batches, IncrementalHash? hash, CancellationToken cancellationToken)
    {
        using var json = await ReadAllAsync(body, maxBytes, "request_too_large", cancellationToken);
        hash?.AppendData(json.Written.Span);
        RecordJsonParser.ParseEnvelope(json.Written.Span, batches);
    }

    /// <summary>Reads one record object per line as the body streams in; blank lines are skipped.</summary>
    public static async Task ReadNdJsonAsync(PipeReader body, int maxLineBytes, long maxBodyBytes, IRecordSink batches, IncrementalHash? hash, CancellationToken cancellationToken)
    {
        int line = 0;
        long consumed = 0;
        while (true)
        {
            var result = await body.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            try
            {
                if (consumed + buffer.Length > maxBodyBytes)
                {
                    throw new ApiException(StatusCodes.Status413PayloadTooLarge, "request_too_large", $"The body is larger than {maxBodyBytes} bytes.");
                }
                while (buffer.PositionOf((byte)'\n') is SequencePosition newline)
                {
                    ParseLine(buffer.Slice(0, newline), ++line, batches);
                    buffer = buffer.Slice(buffer.GetPosition(1, newline));
                }
                if (buffer.Length > maxLineBytes)
                {
                    throw new ApiException(StatusCodes.Status413PayloadTooLarge, "record_too_large", $"Line {line + 1} is longer than {maxLineBytes} bytes.");
                }
                if (result.IsCompleted && !buffer.IsEmpty)
                {
                    ParseLine(buffer, ++line, batches);
                    buffer = buffer.Slice(buffer.End);
                }
            }
            finally
            {
                // Hand the buffer back on every path, errors included, so the server can drain or close the body.
                var done = result.Buffer.Slice(0, buffer.Start);
                consumed += done.Length;
                if (hash is not null)
                {
                    foreach (var segment in done)
                    {
                        hash.AppendData(segment.Span);
                    }
                }
                body.AdvanceTo(buffer.Start, result.Buffer.End);
            }
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    private static void ParseLine(ReadOnlySequence<byte> line, int number, IRecordSink batches)
    {
        byte[]? rented = null;
        ReadOnlySpan<byte> span;
        if (line.IsSingleSegment)
        {
            span = line.FirstSpan;
        }
        else
        {
            rented = ArrayPool<byte>.Shared.Rent((int)line.Length);
            line.CopyTo(rented);
            span = rented.AsSpan(0, (int)line.Length);
        }
        try
        {
            span = span.TrimEnd((byte)'\r');
            if (span.Trim(" \t"u8).IsEmpty)
            {
                return;
            }
            var reader = new Utf8JsonReader(span, ReaderOptions);
            try
            {
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                {
                    throw ApiException.BadRequest("invalid_record", $"Line {number} is not a JSON object.");
                }
                RecordJsonParser.ParseRecord(ref reader, span, batches);
                if (reader.Read())
                {
                    throw ApiException.BadRequest("invalid_json", $"Line {number} holds more than one JSON value.");
                }
            }
            catch (JsonException ex)
            {
                throw ApiException.BadRequest("invalid_json", $"Line {number}: {ex.Message}");
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// The whole body in a pooled buffer: a body of 100 KB copied into an array of its own each time went to the large
    /// object heap, whose fresh, zeroed memory costs page faults and clearing on every such request (figures:
    /// docs/storage.md). Records are copied into their batches as they are parsed, so the buffer is free again once
    /// parsing ends.
    /// </summary>
    private static async Task<PooledBody> ReadAllAsync(PipeReader body, int maxBytes, string code, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await body.ReadAsync(cancellationToken);
            if (result.Buffer.Length > maxBytes)
            {
                body.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                throw new ApiException(StatusCodes.Status413PayloadTooLarge, code, $"The body is larger than {maxBytes} bytes.");
            }
            if (result.IsCompleted)
            {
                int length = (int)result.Buffer.Length;
                var all = new PooledBody(length);
                result.Buffer.CopyTo(all.GetSpan(length));
                all.Advance(length);
                body.AdvanceTo(result.Buffer.End);
                return all;
            }
            body.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }
}
