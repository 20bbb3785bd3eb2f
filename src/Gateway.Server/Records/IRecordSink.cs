using Gateway.Storage;

namespace Gateway.Server.Records;

/// <summary>Where parsed produce records go: a request's batches (<see cref="ProduceBatches"/>), or a test's list.</summary>
internal interface IRecordSink
{
    /// <summary>Records added so far: the index of the next one, as error messages name it (<c>records[i]</c>).</summary>
    int Count { get; }

    /// <summary>Adds a record; the payloads' bytes are copied before this returns.</summary>
    void Add(int? partition, long? timestamp, Payload key, Payload value, IReadOnlyList<RecordHeader>? headers);
}
