using Gateway.Storage;

namespace Gateway.Server.Topics;

/// <summary>Create a topic. <c>partitions</c> defaults to 1; unset config keys take the server's defaults.</summary>
public sealed record CreateTopicRequest(string? Name, int? Partitions, TopicConfigPatch? Config);

/// <summary>Change settings and/or grow the partition count (never shrink).</summary>
public sealed record UpdateTopicRequest(int? Partitions, TopicConfigPatch? Config);

/// <summary>Topic settings to set; absent keys keep their value. Sizes in bytes, times in ms, -1 = unlimited.</summary>
public sealed record TopicConfigPatch(long? RetentionMs, long? RetentionBytes, int? MaxRecordBytes, Acks? Acks);

public sealed record TopicSummary(string Name, int Partitions, TopicConfig Config, long CreatedAt);

public sealed record TopicList(IReadOnlyList<TopicSummary> Topics);

/// <summary>
/// A partition's range and storage: <c>sizeBytes</c> is the log between begin and end; <c>sizeOnDiskBytes</c> what
/// its segment files take (freed a whole segment at a time; a partition taking many small writes also holds up to
/// 20 MB written ahead of its end, so that each commit changes no file metadata); <c>oldestTimestamp</c> the
/// timestamp of the record at the begin offset (null when empty).
/// </summary>
public sealed record PartitionDescription(int Partition, long BeginOffset, long EndOffset, long SizeBytes, long SizeOnDiskBytes, long? OldestTimestamp);

public sealed record TopicDescription(string Name, TopicConfig Config, long CreatedAt, IReadOnlyList<PartitionDescription> Partitions);

/// <summary>A partition's range and, when a timestamp was given, the first offset whose timestamp is ≥ it (the end offset if none is).</summary>
public sealed record PartitionOffsets(int Partition, long BeginOffset, long EndOffset, long? Timestamp, long? Offset);

public sealed record DeleteRecordsResponse(int Partition, long BeginOffset, long EndOffset);
