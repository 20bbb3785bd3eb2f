using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Gateway.Server.Errors;
using Gateway.Storage;

namespace Gateway.Server.Records;

/// <summary>
/// Idempotency-Key handling for produce. A key names one request on one topic: its first attempt appends,
/// stamping every batch with the key's producer id and a hash of the request (so the deduplication state is the
/// log itself and survives restarts); a retry with the same content appends nothing and gets the first answer;
/// other content with the same key is 422. A retry arriving while the first attempt is still in flight waits
/// for it. Every idempotency decision is made here; <see cref="ProduceBatches"/> only stamps and appends.
/// </summary>
public sealed class IdempotentRequests
{
    private readonly ConcurrentDictionary<(string Topic, string Key), TaskCompletionSource<(ProduceResponse Response, long Hash)>> _inFlight = new();

    /// <summary>The key's producer id: a stable, non-negative 63-bit hash of topic and key.</summary>
    public static long ProducerId(string topic, string key)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{topic}\u0000{key}"), digest);
        // Ids below the limit are Kafka producers' (the batch header's fields are shared): a key whose hash falls
        // there (one in 32,768) moves above it; every other key keeps the id it always had.
        long id = BinaryPrimitives.ReadInt64BigEndian(digest) & long.MaxValue;
        return id >= ProducerBatch.ProducerIdLimit ? id : id | (1L << 62);
    }

    /// <summary>
    /// The key as it is remembered: scoped by the principal that sent it, so that one principal can neither claim
    /// another's key first nor be answered another's replay. An anonymous caller's key is kept as sent (as before
    /// principals scoped keys, so a server without credentials still recognises retries across the upgrade).
    /// </summary>
    public static string Scoped(string principal, string key) =>
        principal == Security.AccessControl.Anonymous ? key : $"{principal}\u0000{key}";

    /// <summary>A hash of what makes two attempts the same request: the route and parameters (but <c>acks</c>), then the body.</summary>
    public static IncrementalHash StartRequestHash(HttpRequest request)
    {
        var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var query = request.Query.Where(q => q.Key != "acks").OrderBy(q => q.Key, StringComparer.Ordinal).Select(q => $"{q.Key}={q.Value}");
        hash.AppendData(Encoding.UTF8.GetBytes($"{request.Path}?{string.Join('&', query)}\n{request.ContentType}\n"));
        return hash;
    }

    public static long Finish(IncrementalHash hash) => BinaryPrimitives.ReadInt64BigEndian(hash.GetHashAndReset()) & IdempotencyStamp.HashMask;

    public static void Validate(string key)
    {
        if (key.Length is 0 or > 255 || key.Any(c => c is < '!' or > '~'))
        {
            throw ApiException.BadRequest("invalid_idempotency_key", "An Idempotency-Key is 1-255 visible ASCII characters (a UUID is a good choice).");
        }
    }

    /// <summary>
    /// What an earlier attempt of this request appended, by partition, decided before anything is appended. Every
    /// partition of the topic is asked, not only this attempt's: the same key with other content may have placed its
    /// records elsewhere, and is still refused (422 <c>idempotency_key_reused</c>). A partition that holds the key's
    /// batch where this attempt places another number of records (the topic grew) is 409 <c>idempotency_conflict</c>.
    /// </summary>
    /// <param name="topic">the topic produced to</param>
    /// <param name="stamp">this attempt's producer id (from the key) and request hash</param>
    /// <param name="recordsAt">how many records this attempt places in a partition</param>
    public static Dictionary<int, IdempotentBatch> EarlierAttempt(ITopic topic, IdempotencyStamp stamp, Func<int, int> recordsAt)
    {
        var earlier = new Dictionary<int, IdempotentBatch>();
        for (int p = 0; p < topic.PartitionCount; p++)
        {
            if (topic.GetPartition(p).TryGetIdempotent(stamp.ProducerId, out var batch))
            {
                if (batch.RequestHash != stamp.RequestHash)
                {
                    throw new IdempotencyKeyReusedException();
                }
                if (recordsAt(p) != batch.Count)
                {
                    throw new ApiException(StatusCodes.Status409Conflict, "idempotency_conflict", "The records this key appended earlier were placed differently (did the topic grow?); use a new key.");
                }
                earlier[p] = batch;
            }
        }
        return earlier;
    }

    /// <summary>Runs the append once per key at a time; a concurrent attempt with the same key waits and shares the answer.</summary>
    public async Task<(ProduceResponse Response, bool Replayed)> RunAsync(string topic, string key, long hash, Func<Task<(ProduceResponse, bool)>> append)
    {
        var mine = new TaskCompletionSource<(ProduceResponse, long)>(TaskCreationOptions.RunContinuationsAsynchronously);
        while (true)
        {
            var current = _inFlight.GetOrAdd((topic, key), mine);
            if (current == mine)
            {
                break;
            }
            try
            {
                var (_, firstHash) = await current.Task;
                if (firstHash != hash)
                {
                    throw new IdempotencyKeyReusedException();
                }
                // Same request: take a turn, which answers from the stamped batches once they are committed.
            }
            catch (Exception ex) when (ex is not IdempotencyKeyReusedException)
            {
                // The first attempt failed: this one takes its turn.
            }
            _inFlight.TryRemove(KeyValuePair.Create((topic, key), current));
        }
        try
        {
            var (response, replayed) = await append();
            mine.SetResult((response, hash));
            return (response, replayed);
        }
        catch (Exception ex)
        {
            mine.SetException(ex);
            throw;
        }
        finally
        {
            _inFlight.TryRemove(KeyValuePair.Create((topic, key), mine));
        }
    }
}
