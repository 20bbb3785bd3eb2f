using System.Buffers;
using FASTER.core;
using Gateway.Storage.Records;

namespace Gateway.Log;

/// <summary>
/// The one loop over a partition's stored batches: reads the log's entries in [from, until) in address order and
/// hands each over as a checked batch (one whole v2 batch whose CRC matches) with the pooled memory it lives in. An
/// entry that fails the check is the log's corruption, thrown as the partition words it; reads, timestamp lookups,
/// recovery and verification all scan through here.
/// </summary>
internal readonly struct BatchScanner : IDisposable
{
    private readonly FasterLogScanIterator _iterator;
    private readonly Func<string, Exception> _corrupted;

    public BatchScanner(FasterLog log, long from, long until, ScanBufferingMode buffering, Func<string, Exception> corrupted)
    {
        _iterator = log.Scan(from, until, name: null, recover: false, buffering);
        _corrupted = corrupted;
    }

    /// <summary>The next batch and its address; the caller owns (and disposes) <paramref name="owner"/>. False at the end.</summary>
    public bool TryNext(out IMemoryOwner<byte> owner, out RecordBatch batch, out long address)
    {
        if (!_iterator.GetNext(MemoryPool<byte>.Shared, out owner, out int length, out address))
        {
            batch = default;
            return false;
        }
        var memory = owner.Memory[..length];
        if (!RecordBatch.TryValidate(memory.Span, out string error))
        {
            owner.Dispose();
            throw _corrupted($"entry at address {address}: {error}");
        }
        batch = new RecordBatch(memory);
        return true;
    }

    public void Dispose() => _iterator.Dispose();
}
