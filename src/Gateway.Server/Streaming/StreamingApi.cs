using System.Text.Json;
using Gateway.Server.Errors;
using Gateway.Server.Groups;
using Gateway.Server.Hosting;
using Gateway.Server.Observability;
using Gateway.Server.Records;
using Gateway.Server.Security;
using Gateway.Storage;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Streaming;

/// <summary>
/// Records as Server-Sent Events, for browsers' <c>EventSource</c> and <c>curl -N</c>. Each subscriber reads the
/// log at its own position (a slow one falls behind alone and holds no one else's data); subscribers at the tail
/// share encoded records; idle ones wait on the commit that passes them and on one shared keep-alive timer.
/// </summary>
public static class StreamingApi
{
    public static IEndpointRouteBuilder MapStreaming(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/topics/{topic}/events", StreamTopicAsync).WithTags("Streaming").WithName("StreamTopic").RequireTopic(Operations.Fetch).ProducesProblem(429)
            .WithMetadata(new AcceptsAccessToken())
            .WithSummary("Stream a topic's records as Server-Sent Events")
            .WithDescription(
                "Every record of the topic (or of `partition`) as it is committed, from `from` = `earliest`, `latest` (default) or an offset. " +
                "Each event: `id:` an opaque cursor of every partition's position, `event: record`, `data:` the record JSON (as fetch returns it). " +
                "`Last-Event-ID` (header, or `lastEventId` in the query) resumes exactly after the last event received. A position below a " +
                "partition's begin offset moves to it, announced by an `event: reset` before the first record. A comment line keeps idle streams alive.")
            .Produces(200, contentType: "text/event-stream")
            .ProducesProblem(400).ProducesProblem(404);
        app.MapGet("/v1/groups/{group}/events", StreamGroupAsync).WithTags("Streaming").WithName("StreamGroup").RequireGroup(Operations.Consume).ProducesProblem(429)
            .WithMetadata(new AcceptsAccessToken())
            .WithSummary("Stream a consumer group's share of records as Server-Sent Events")
            .WithDescription(
                "Joins the group for the life of the connection with `topics` (comma-separated) and streams the partitions assigned to it, following " +
                "rebalances. Commits the position of what it sent every `Streaming:CommitIntervalMs` and on disconnect (at least once), then leaves. " +
                "`Last-Event-ID` resumes after the last event received for the partitions this connection is given.")
            .Produces(200, contentType: "text/event-stream")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(409).ProducesProblem(503);
        return app;
    }

    private static async Task StreamTopicAsync(
        string topic, string? from, int? partition, string? lastEventId,
        HttpContext context, ILogStorage store, SharedEventCache cache, KeepAliveTicker ticker, IOptions<StreamingOptions> options, GatewayMetrics metrics,
        IHostApplicationLifetime lifetime)
    {
        using var slot = Quotas.EnterWait(context);
        var settings = options.Value;
        var log = store.GetTopic(topic);
        if (partition is int p)
        {
            log.GetPartition(p);
        }
        var cursor = StreamPositions.ReadCursor(context, lastEventId, [topic]);
        var positions = new Dictionary<TopicPartition, long>();
        var resets = new List<PositionReset>();
        await StreamPositions.AddPartitionsAsync(log, partition, from, cursor, positions, resets, context.RequestAborted);
        // Started only now: a bad start position above is a problem answer, not a stream.
        var stream = EventStream.Start(context, settings, cache);
        stream.Resets.AddRange(resets);
        stream.WriteResets();
        // Ends when the client leaves or the server stops: a stream then ends cleanly instead of holding up shutdown.
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var cancel = ending.Token;
        using var subscriber = metrics.StreamOpened(group: false);
        int phase = ticker.AssignPhase();
        // The one registration of this stream on the request's end; each idle wait adds nothing but its WhenAny.
        var ended = Task.Delay(Timeout.Infinite, cancel);
        try
        {
            await stream.OpenAsync(cancel);
            var topicName = JsonEncodedText.Encode(topic);
            Func<TopicPartition, IPartition> partitionOf = tp => log.GetPartition(tp.Partition);
            while (!cancel.IsCancellationRequested)
            {
                if (!store.TryGetTopic(topic, out var current) || current != log)
                {
                    return; // the topic was deleted: the stream ends
                }
                if (partition is null && log.PartitionCount > positions.Count)
                {
                    // The topic grew: new partitions are read from their start, so nothing in them is missed.
                    await StreamPositions.AddPartitionsAsync(log, null, "earliest", cursor, positions, stream.Resets, cancel);
                    stream.WriteResets();
                }
                if (await stream.SendAsync(positions, partitionOf, topicName, cancel))
                {
                    await stream.FlushAsync(cancel);
                    continue;
                }
                var tick = ticker.NextTick(phase);
                var woken = await PositionRange.WhenRecordOr(positions, partitionOf, [tick, ended]);
                cancel.ThrowIfCancellationRequested();
                if (woken == tick)
                {
                    await stream.SendKeepAliveAsync(cancel);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The client left, or stopped reading and was disconnected, or the server is stopping.
        }
        catch (TopicNotFoundException)
        {
            // The topic was deleted while a read was under way: the stream ends.
        }
    }

    private static async Task StreamGroupAsync(
        string group, string? topics, int? sessionTimeoutMs, string? autoOffsetReset, string? lastEventId,
        HttpContext context, ILogStorage store, IGroupCoordinator groups, SharedEventCache cache, KeepAliveTicker ticker,
        IOptions<StreamingOptions> options, IOptions<GroupOptions> groupOptions, TimeProvider time, GatewayMetrics metrics, IHostApplicationLifetime lifetime)
    {
        RequestChecks.GroupName(group);
        RequestChecks.NotHeldByKafka(group, context);
        string[] names = topics?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
        if (names.Length == 0)
        {
            throw ApiException.BadRequest("missing_parameter", "Name the topics to read: ?topics=a,b.");
        }
        var access = context.RequestServices.GetRequiredService<AccessControl>();
        foreach (string name in names)
        {
            access.Demand(context, ResourceKind.Topic, name, Operations.Fetch);
            store.GetTopic(name);
        }
        using var slot = Quotas.EnterWait(context);
        RequestChecks.SessionTimeout(sessionTimeoutMs, groupOptions.Value);
        var reset = autoOffsetReset switch
        {
            null or "latest" => OffsetReset.Latest,
            "earliest" => OffsetReset.Earliest,
            _ => throw ApiException.BadRequest("invalid_parameter", "autoOffsetReset is 'earliest' or 'latest'."),
        };
        var cursor = StreamPositions.ReadCursor(context, lastEventId, names);
        // The stream's member is its caller's own: no other principal can name it (rejoin it with other topics, commit
        // or read through it), so what was checked above holds for the life of the stream.
        string owner = access.PrincipalOf(context);
        var member = await groups.JoinAsync(group, null, names, sessionTimeoutMs, reset, owner);
        var session = new GroupStream(
            new MemberShare(groups, store, group, member.MemberId, owner), groups, group, member, owner,
            EventStream.Start(context, options.Value, cache), options.Value, ticker, time);
        // Ends when the client leaves or the server stops: then it commits what it sent and leaves.
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        using var subscriber = metrics.StreamOpened(group: true);
        await session.RunAsync(cursor, ending.Token);
    }
}
