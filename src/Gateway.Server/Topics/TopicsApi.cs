using Gateway.Server.Errors;
using Gateway.Server.Hosting;
using Gateway.Server.Security;
using Gateway.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Topics;

/// <summary>Topic administration: create, list, describe, change, delete; partition offsets and record deletion.</summary>
public static class TopicsApi
{
    public static IEndpointRouteBuilder MapTopics(this IEndpointRouteBuilder app)
    {
        var topics = app.MapGroup("/v1/topics").WithTags("Topics");

        topics.MapPost("/", CreateAsync).WithName("CreateTopic").RequireAuthenticated()
            .WithSummary("Create a topic")
            .WithDescription("Creates a topic with `partitions` partitions (default 1). Names follow Kafka's rule: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`. " +
                "On the kafka storage backend a `config.acks` other than the server's default is 501 `not_supported` (`topicAcks`): a Kafka cluster keeps no acks per topic; give `?acks=` per produce request.")
            .ProducesProblem(400).ProducesProblem(409).ProducesProblem(501).ProducesProblem(503);
        topics.MapGet("/", List).WithName("ListTopics").RequireAuthenticated().WithSummary("List topics")
            .WithDescription("Every topic with its partition count, settings and creation time (epoch ms), sorted by name.");
        topics.MapGet("/{topic}", Describe).WithName("DescribeTopic").RequireTopic(Operations.AnyOnTopic)
            .WithSummary("Describe a topic")
            .WithDescription("Settings, and per partition the begin offset, end offset (high watermark) and bytes held.")
            .ProducesProblem(404);
        topics.MapPatch("/{topic}", UpdateAsync).WithName("UpdateTopic").RequireTopic(Operations.Admin)
            .WithSummary("Change a topic's settings or grow its partitions")
            .WithDescription("Keys absent from `config` keep their value. `partitions` may only grow; existing keys keep their partition only while the count is unchanged, as in Kafka. " +
                "On the kafka storage backend `config.acks` other than the server's default is 501 `not_supported` (`topicAcks`).")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(501).ProducesProblem(503);
        topics.MapDelete("/{topic}", DeleteAsync).WithName("DeleteTopic").RequireTopic(Operations.Admin)
            .WithSummary("Delete a topic and its data")
            .WithDescription("Removes the topic, its partitions' files and every group's committed offsets for it. Open streams of the topic end.")
            .ProducesProblem(404);
        topics.MapGet("/{topic}/partitions/{partition}/offsets", OffsetsAsync).WithName("GetPartitionOffsets").RequireTopic(Operations.AnyOnTopic)
            .WithSummary("A partition's offsets, or the offset for a timestamp")
            .WithDescription("Without `timestamp`: begin and end offsets. With `timestamp` (epoch ms): also the first offset whose record timestamp is ≥ it, or the end offset if no record is that recent.")
            .ProducesProblem(404);
        topics.MapDelete("/{topic}/partitions/{partition}/records", DeleteRecordsAsync).WithName("DeleteRecords").RequireTopic(Operations.Admin)
            .WithSummary("Delete records before an offset")
            .WithDescription("Advances the partition's begin offset to `before` (Kafka's delete-records). Offsets are never reused.")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(416);
        return app;
    }

    private static async Task<Created<TopicDescription>> CreateAsync(
        CreateTopicRequest request, ILogStorage store, IOptions<ApiLimits> limits, AccessControl access, HttpContext context, CancellationToken cancellationToken)
    {
        if (!TopicName.IsValid(request.Name))
        {
            throw ApiException.BadRequest("invalid_topic_name", "A topic name is 1-249 characters of [a-zA-Z0-9._-], and not '.' or '..'.");
        }
        access.Demand(context, ResourceKind.Topic, request.Name!, Operations.Admin);
        int partitions = request.Partitions ?? 1;
        ValidatePartitionCount(partitions, limits.Value);
        var config = Merge(store.Limits.TopicDefaults, request.Config, store.Limits);
        RequireTopicAcks(store, config);
        var topic = await store.CreateTopicAsync(request.Name!, partitions, config, cancellationToken);
        return TypedResults.Created($"/v1/topics/{topic.Name}", DescriptionOf(topic));
    }

    private static Ok<TopicList> List(ILogStorage store, AccessControl access, HttpContext context) =>
        TypedResults.Ok(new TopicList([.. store.Topics.Where(t => access.CanSee(context, ResourceKind.Topic, t.Name)).Select(t => new TopicSummary(t.Name, t.PartitionCount, t.Config, t.CreatedAt))]));

    private static Ok<TopicDescription> Describe(string topic, ILogStorage store) => TypedResults.Ok(DescriptionOf(store.GetTopic(topic)));

    private static async Task<Ok<TopicDescription>> UpdateAsync(string topic, UpdateTopicRequest request, ILogStorage store, TopicEvents events, IOptions<ApiLimits> limits, CancellationToken cancellationToken)
    {
        var current = store.GetTopic(topic);
        if (request.Partitions is int partitions)
        {
            ValidatePartitionCount(partitions, limits.Value);
            if (partitions < current.PartitionCount)
            {
                throw ApiException.BadRequest("partition_count_decrease", $"Topic '{topic}' has {current.PartitionCount} partitions; partitions can be added, never removed.");
            }
        }
        var config = request.Config is null ? null : Merge(current.Config, request.Config, store.Limits);
        if (config is not null)
        {
            RequireTopicAcks(store, config);
        }
        int before = current.PartitionCount;
        var updated = await store.UpdateTopicAsync(topic, config, request.Partitions, cancellationToken);
        if (updated.PartitionCount != before)
        {
            events.PartitionsAdded(topic);
        }
        return TypedResults.Ok(DescriptionOf(updated));
    }

    private static async Task<NoContent> DeleteAsync(string topic, ILogStorage store, TopicEvents events, CancellationToken cancellationToken)
    {
        await store.DeleteTopicAsync(topic, cancellationToken);
        await events.DeletedAsync(topic);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<PartitionOffsets>> OffsetsAsync(string topic, int partition, long? timestamp, ILogStorage store, CancellationToken cancellationToken)
    {
        if (timestamp < 0)
        {
            throw ApiException.BadRequest("invalid_parameter", "timestamp is epoch milliseconds, not negative.");
        }
        var log = store.GetTopic(topic).GetPartition(partition);
        long? offset = timestamp is long t ? await log.OffsetForTimestampAsync(t, cancellationToken) : null;
        return TypedResults.Ok(new PartitionOffsets(partition, log.BeginOffset, log.EndOffset, timestamp, offset));
    }

    private static async Task<Ok<DeleteRecordsResponse>> DeleteRecordsAsync(string topic, int partition, long? before, ILogStorage store, CancellationToken cancellationToken)
    {
        if (before is not long offset)
        {
            throw ApiException.BadRequest("missing_parameter", "Give the offset to delete before: ?before=N.");
        }
        var log = store.GetTopic(topic).GetPartition(partition);
        long begin = await log.DeleteRecordsBeforeAsync(offset, cancellationToken);
        return TypedResults.Ok(new DeleteRecordsResponse(partition, begin, log.EndOffset));
    }

    /// <summary>A topic's own acks needs a backend that keeps it (the kafka backend does not: Kafka refuses topic configs it does not know).</summary>
    private static void RequireTopicAcks(ILogStorage store, TopicConfig config)
    {
        if (config.Acks != store.Limits.TopicDefaults.Acks && !store.Capabilities.HasFlag(StorageCapabilities.TopicAcks))
        {
            throw ApiException.NotSupported("topicAcks", $"This server's storage backend keeps no acks per topic: leave config.acks at the server's default ({(store.Limits.TopicDefaults.Acks == Acks.Disk ? "disk" : "memory")}) and give ?acks= with each produce request.");
        }
    }

    private static TopicDescription DescriptionOf(ITopic topic) => new(
        topic.Name,
        topic.Config,
        topic.CreatedAt,
        [.. topic.Partitions.Select(p => new PartitionDescription(p.Partition, p.BeginOffset, p.EndOffset, p.SizeBytes, p.SizeOnDiskBytes, p.Failure is null ? p.OldestTimestamp() : null))]);

    private static void ValidatePartitionCount(int partitions, ApiLimits limits)
    {
        if (partitions < 1 || partitions > limits.MaxPartitions)
        {
            throw ApiException.BadRequest("invalid_partition_count", $"A topic has between 1 and {limits.MaxPartitions} partitions.");
        }
    }

    private static TopicConfig Merge(TopicConfig current, TopicConfigPatch? patch, StorageLimits options)
    {
        if (patch is null)
        {
            return current;
        }
        var merged = current with
        {
            RetentionMs = patch.RetentionMs ?? current.RetentionMs,
            RetentionBytes = patch.RetentionBytes ?? current.RetentionBytes,
            MaxRecordBytes = patch.MaxRecordBytes ?? current.MaxRecordBytes,
            Acks = patch.Acks ?? current.Acks,
        };
        if (merged.ValidationError(options.MaxRecordBytesLimit) is var (key, problem))
        {
            throw ApiException.InvalidConfig(key, problem);
        }
        return merged;
    }
}
