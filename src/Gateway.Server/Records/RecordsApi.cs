using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Gateway.Server.Errors;
using Gateway.Server.Hosting;
using Gateway.Server.Observability;
using Gateway.Server.Security;
using Gateway.Storage;
using Gateway.Storage.Records;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Records;

/// <summary>Produce records (JSON, NDJSON or a raw body) and fetch them by offset, with long-poll.</summary>
public static class RecordsApi
{
    private const string ProduceDescription =
        "Body formats: `application/json` `{\"records\":[...]}`; `application/x-ndjson`, one record object per line, streamed; " +
        "any other type is one record's value (`text/*` and form bodies as text, `*/*+json` as JSON, the rest as bytes) with `?key=`. " +
        "Records are partitioned by their own `partition`, else `?partition=`, else murmur2 of the key (Kafka's default partitioner), " +
        "else all keyless records of a request go to one partition, taken in turn across requests. Every record is validated before " +
        "anything is appended; each partition's records are appended as one batch, all or nothing. `acks=disk` (the topic's default " +
        "unless configured) answers after the records reached the disk; `acks=memory` after the append, persisted within the flush interval. " +
        "With an `Idempotency-Key` header, a retry with the same key and content appends nothing and gets the first answer with " +
        "`Idempotency-Replayed: true`, also after a restart (the key is kept in the stored batches, for `Storage:IdempotencyWindowMs`); " +
        "the same key with other content is 422 `idempotency_key_reused`; a retry while the first attempt is in flight waits for it. " +
        "A storage backend without idempotency keys (or, for `expectedOffset`, without conditional appends) answers 501 `not_supported` " +
        "and appends nothing; the embedded backend has both.";

    public static IEndpointRouteBuilder MapRecords(this IEndpointRouteBuilder app)
    {
        var topics = app.MapGroup("/v1/topics/{topic}").WithTags("Records");

        topics.MapPost("/records", ProduceAsync).WithName("Produce").RequireTopic(Operations.Produce).ProducesProblem(429)
            .WithSummary("Produce records to a topic")
            .WithDescription(ProduceDescription)
            .Accepts<ProduceRequest>("application/json", "application/x-ndjson", "application/octet-stream", "text/plain", "*/*")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(409).ProducesProblem(413).ProducesProblem(501).ProducesProblem(503).ProducesProblem(507);
        topics.MapPost("/partitions/{partition}/records", ProduceToPartitionAsync).WithName("ProduceToPartition").RequireTopic(Operations.Produce).ProducesProblem(429)
            .WithSummary("Produce records to one partition")
            .WithDescription(ProduceDescription + " With `expectedOffset=N` the append happens only if the partition ends at N, else 412 `offset_mismatch` (optimistic concurrency).")
            .Accepts<ProduceRequest>("application/json", "application/x-ndjson", "application/octet-stream", "text/plain", "*/*")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(409).ProducesProblem(412).ProducesProblem(413).ProducesProblem(501).ProducesProblem(503).ProducesProblem(507);
        topics.MapGet("/partitions/{partition}/records", FetchAsync).WithName("FetchRecords").RequireTopic(Operations.Fetch).ProducesProblem(429)
            .WithSummary("Fetch records from a partition by offset")
            .WithDescription(
                "Starts at `offset`, or at the first record with timestamp ≥ `timestamp`, or at the begin offset. Returns at most `limit` records " +
                "and about `maxBytes` of them (always at least one). With `waitMs` and no record at the start offset yet, the answer comes as soon as " +
                "one is committed, or empty after `waitMs`. Only committed records are returned. An offset outside [beginOffset, endOffset] is 416.")
            .Produces<FetchResponse>(200)
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(416);
        return app;
    }

    private static Task<Ok<ProduceResponse>> ProduceAsync(
        string topic, HttpRequest request, ILogStorage store, IdempotentRequests idempotent, GatewayMetrics metrics, IOptions<ApiLimits> limits,
        string? acks, int? partition, string? key, long? timestamp, CancellationToken cancellationToken) =>
        ProduceCoreAsync(
            new ProduceParameters(store.GetTopic(topic), partition, PartitionFromPath: false, acks, key, timestamp, ExpectedOffset: null),
            request, new ProduceServices(store, idempotent, metrics, limits.Value), cancellationToken);

    private static Task<Ok<ProduceResponse>> ProduceToPartitionAsync(
        string topic, int partition, HttpRequest request, ILogStorage store, IdempotentRequests idempotent, GatewayMetrics metrics, IOptions<ApiLimits> limits,
        string? acks, string? key, long? timestamp, long? expectedOffset, CancellationToken cancellationToken) =>
        ProduceCoreAsync(
            new ProduceParameters(store.GetTopic(topic), partition, PartitionFromPath: true, acks, key, timestamp, expectedOffset),
            request, new ProduceServices(store, idempotent, metrics, limits.Value), cancellationToken);

    private static void Require(ILogStorage store, StorageCapabilities capability, string name, string detail)
    {
        if (!store.Capabilities.HasFlag(capability))
        {
            throw ApiException.NotSupported(name, detail);
        }
    }

    /// <summary>What one produce request asks for: where the records go, with which acks, and its raw body's key and timestamp.</summary>
    private sealed record ProduceParameters(ITopic Topic, int? Partition, bool PartitionFromPath, string? Acks, string? Key, long? Timestamp, long? ExpectedOffset);

    /// <summary>What produce works with.</summary>
    private sealed record ProduceServices(ILogStorage Store, IdempotentRequests Idempotent, GatewayMetrics Metrics, ApiLimits Limits);

    private static async Task<Ok<ProduceResponse>> ProduceCoreAsync(ProduceParameters produce, HttpRequest request, ProduceServices services, CancellationToken cancellationToken)
    {
        var (topic, partition, partitionFromPath, acks, key, timestamp, expectedOffset) = produce;
        var (store, idempotent, metrics, limits) = services;
        Quotas.AdmitProduce(request.HttpContext);
        var ackMode = ParseAcks(acks, topic.Config.Acks);
        var idempotencyKeys = request.Headers["Idempotency-Key"];
        if (idempotencyKeys.Count > 1)
        {
            // Which one a proxy or framework keeps differs: the retry could be answered as another request.
            throw ApiException.BadRequest("invalid_idempotency_key", "Give one Idempotency-Key header, not several.");
        }
        string? idempotencyKey = idempotencyKeys.Count == 1 ? idempotencyKeys[0] : null;
        if (idempotencyKey is not null)
        {
            IdempotentRequests.Validate(idempotencyKey);
            Require(store, StorageCapabilities.IdempotencyKeys, "idempotencyKeys", "This server's storage backend does not keep Idempotency-Key windows: send the request without the header.");
        }
        if (expectedOffset < 0)
        {
            throw ApiException.BadRequest("invalid_parameter", "expectedOffset is the offset the partition must end at: not negative.");
        }
        if (expectedOffset is not null)
        {
            Require(store, StorageCapabilities.ConditionalAppend, "conditionalAppend", "This server's storage backend cannot append at an expected offset: send the request without expectedOffset.");
        }
        if (partition < 0)
        {
            throw ApiException.BadRequest("invalid_partition", "partition is a non-negative integer.");
        }
        using var hash = idempotencyKey is null ? null : IdempotentRequests.StartRequestHash(request);
        var kind = ProduceBodyReader.Classify(request.ContentType);
        if (kind is ProduceBodyReader.BodyKind.Envelope or ProduceBodyReader.BodyKind.NdJson && (key is not null || timestamp is not null))
        {
            throw ApiException.BadRequest("invalid_parameter", "?key= and ?timestamp= apply to a raw body; in JSON and NDJSON give them per record.");
        }
        using var batches = new ProduceBatches(
            topic, partition, partitionFromPath, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), store.Limits.MaxBatchBytes,
            idempotencyKey,
            request.ContentLength);
        int bodyLimit = (int)Math.Min(int.MaxValue, limits.MaxRequestBytes);
        if (request.ContentLength > limits.MaxRequestBytes)
        {
            // Kestrel enforces this too; the check keeps the answer the same behind any host.
            throw new ApiException(StatusCodes.Status413PayloadTooLarge, "request_too_large", $"The request body is larger than {limits.MaxRequestBytes} bytes.");
        }
        switch (kind)
        {
            case ProduceBodyReader.BodyKind.Envelope:
                await ProduceBodyReader.ReadEnvelopeAsync(request.BodyReader, bodyLimit, batches, hash, cancellationToken);
                break;
            case ProduceBodyReader.BodyKind.NdJson:
                // A line holds one record: its value may be base64 (4/3 larger) plus JSON around it.
                int maxLine = (int)Math.Min(bodyLimit, ((long)topic.Config.MaxRecordBytes * 4 / 3) + 64 * 1024);
                await ProduceBodyReader.ReadNdJsonAsync(request.BodyReader, maxLine, limits.MaxRequestBytes, batches, hash, cancellationToken);
                break;
            default:
                await ProduceBodyReader.ReadSingleAsync(request.BodyReader, kind, key, timestamp, Math.Min(topic.Config.MaxRecordBytes, bodyLimit), batches, hash, cancellationToken);
                break;
        }
        Quotas.ChargeUndeclaredBytes(request.HttpContext, batches.SizeInBytes);
        if (idempotencyKey is null || hash is null)
        {
            var appended = await batches.AppendAsync(ackMode, expectedOffset, cancellationToken);
            metrics.Produced(topic.Name, appended.Offsets.Count, batches.SizeInBytes);
            return TypedResults.Ok(appended);
        }
        long requestHash = IdempotentRequests.Finish(hash);
        // A key is the caller's own: another principal's request with the same key is another request.
        string scopedKey = IdempotentRequests.Scoped(request.HttpContext.RequestServices.GetRequiredService<AccessControl>().PrincipalOf(request.HttpContext), idempotencyKey);
        var stamp = new IdempotencyStamp(IdempotentRequests.ProducerId(topic.Name, scopedKey), requestHash);
        var (response, replayed) = await idempotent.RunAsync(topic.Name, scopedKey, requestHash, () => batches.AppendAsync(ackMode, expectedOffset, stamp, cancellationToken));
        if (replayed)
        {
            request.HttpContext.Response.Headers["Idempotency-Replayed"] = "true";
        }
        else
        {
            metrics.Produced(topic.Name, response.Offsets.Count, batches.SizeInBytes);
        }
        return TypedResults.Ok(response);
    }

    private static async Task<IResult> FetchAsync(
        string topic, int partition, long? offset, long? timestamp, int? limit, int? maxBytes, int? waitMs,
        ILogStorage store, SharedEventCache cache, GatewayMetrics metrics, IOptions<ApiLimits> options, HttpContext context, IHostApplicationLifetime lifetime)
    {
        var limits = options.Value;
        int records = RequestChecks.InRange(limit ?? limits.DefaultFetchRecords, 1, limits.MaxFetchRecords, "limit");
        int bytes = RequestChecks.InRange(maxBytes ?? limits.DefaultFetchBytes, 1, limits.MaxFetchBytes, "maxBytes");
        int wait = RequestChecks.InRange(waitMs ?? 0, 0, limits.MaxWaitMs, "waitMs");
        if (offset is not null && timestamp is not null)
        {
            throw ApiException.BadRequest("invalid_parameter", "Give offset or timestamp, not both.");
        }
        if (timestamp < 0)
        {
            throw ApiException.BadRequest("invalid_parameter", "timestamp is epoch milliseconds, not negative.");
        }
        var log = store.GetTopic(topic).GetPartition(partition);
        long start = offset ?? (timestamp is long t ? await log.OffsetForTimestampAsync(t, context.RequestAborted) : log.BeginOffset);
        if (start < log.BeginOffset || start > log.EndOffset)
        {
            // Outside this node's view, which may lag the log (an offset another node answered): the log decides.
            var (begin, end) = await log.CurrentOffsetsAsync(context.RequestAborted);
            if (start < begin || start > end)
            {
                throw new OffsetOutOfRangeException(start, begin, end);
            }
        }
        if (wait > 0 && start == log.EndOffset)
        {
            using var slot = Quotas.EnterWait(context);
            using var waiting = metrics.FetchWaiting();
            // A server that stops ends the wait as waitMs would: the client gets its answer now, not at the kill.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
            timeout.CancelAfter(wait);
            try
            {
                if (!await log.WaitForRecordAsync(start, timeout.Token))
                {
                    // The partition closed under us: the topic was deleted (or the server is stopping).
                    store.GetTopic(topic);
                }
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
            {
                // waitMs passed with nothing new: an empty answer.
            }
        }
        if (cache.TryCollect(log, start, records, bytes, out var shared))
        {
            // Every record is in the shared ring of encoded tail records (readers of the tail share one encoding).
            metrics.FetchedShared(topic, shared.Json.Length, shared.Bytes);
            return new SharedFetchResult(shared);
        }
        var set = await log.ReadAsync(start, records, bytes, context.RequestAborted);
        metrics.Fetched(topic, set.Count, set.Bytes);
        return new FetchResult(topic, log, set, cache);
    }

    private static Acks ParseAcks(string? acks, Acks topicDefault) => acks switch
    {
        null => topicDefault,
        "disk" => Acks.Disk,
        "memory" => Acks.Memory,
        _ => throw ApiException.BadRequest("invalid_acks", "acks is 'disk' or 'memory'."),
    };

    /// <summary>
    /// Writes a fetch answer straight from the stored batches into the response; the records among the most recent
    /// offsets are encoded into the shared ring on the way, for the next reader of the tail.
    /// </summary>
    private sealed class FetchResult(string topic, IPartition log, RecordSet records, SharedEventCache cache) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            using (records)
            {
                httpContext.Response.StatusCode = StatusCodes.Status200OK;
                httpContext.Response.ContentType = "application/json; charset=utf-8";
                await httpContext.Response.SendPooledAsync(SizeHint(), Write, httpContext.RequestAborted);
            }
        }

        /// <summary>Stored bytes grow in JSON (field names, escaping, base64 for binary): a first guess of the answer's size.</summary>
        private int SizeHint() => (int)Math.Min(int.MaxValue / 2, (records.Bytes * 3 / 2) + (records.Count * 96L) + 256);

        private void Write(System.Buffers.IBufferWriter<byte> body)
        {
            using var writer = new Utf8JsonWriter(body, RecordJson.WriterOptions);
            var topicName = JsonEncodedText.Encode(topic);
            long shareFrom = cache.RecordsPerPartition == 0 ? long.MaxValue : records.EndOffset - cache.RecordsPerPartition;
            writer.WriteStartObject();
            writer.WriteStartArray("records");
            foreach (var record in records)
            {
                if (record.Offset >= shareFrom)
                {
                    writer.WriteRawValue(cache.Get(log, topicName, record), skipInputValidation: true);
                }
                else
                {
                    RecordJson.Write(writer, topicName, log.Partition, record);
                }
            }
            writer.WriteEndArray();
            writer.WriteNumber("nextOffset", records.NextOffset);
            writer.WriteNumber("beginOffset", records.BeginOffset);
            writer.WriteNumber("endOffset", records.EndOffset);
            writer.WriteEndObject();
            writer.Flush();
        }
    }

    /// <summary>
    /// A fetch answer from the shared ring: the same bytes <see cref="FetchResult"/> writes, copied once into the
    /// response with a Content-Length.
    /// </summary>
    private sealed class SharedFetchResult(CachedRecords records) : IResult
    {
        private const int ChunkBytes = 32 * 1024;

        public async Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            byte[] tail = Encoding.ASCII.GetBytes(string.Create(
                CultureInfo.InvariantCulture, $"],\"nextOffset\":{records.NextOffset},\"beginOffset\":{records.BeginOffset},\"endOffset\":{records.EndOffset}}}"));
            var head = "{\"records\":["u8;
            long length = head.Length + tail.Length + Math.Max(0, records.Json.Length - 1);
            foreach (byte[] json in records.Json)
            {
                length += json.Length;
            }
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/json; charset=utf-8";
            response.ContentLength = length;
            var body = response.BodyWriter;
            Fill(body, head, records.Json, tail);
            await body.FlushAsync(httpContext.RequestAborted);
        }

        // Copies the answer into large spans of the response: Kestrel's writer takes a lock for every GetSpan and
        // Advance, and two writes per record (comma, record) made that lock a large share of a large fetch's CPU
        // (figures: docs/storage.md).
        private static void Fill(PipeWriter body, ReadOnlySpan<byte> head, byte[][] json, byte[] tail)
        {
            var span = body.GetSpan(ChunkBytes);
            int used = 0;
            Copy(body, ref span, ref used, head);
            for (int i = 0; i < json.Length; i++)
            {
                if (i > 0)
                {
                    Copy(body, ref span, ref used, ","u8);
                }
                Copy(body, ref span, ref used, json[i]);
            }
            Copy(body, ref span, ref used, tail);
            body.Advance(used);
        }

        private static void Copy(PipeWriter body, ref Span<byte> span, ref int used, ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                if (used == span.Length)
                {
                    body.Advance(used);
                    span = body.GetSpan(ChunkBytes);
                    used = 0;
                }
                int n = Math.Min(bytes.Length, span.Length - used);
                bytes[..n].CopyTo(span[used..]);
                used += n;
                bytes = bytes[n..];
            }
        }
    }
}
