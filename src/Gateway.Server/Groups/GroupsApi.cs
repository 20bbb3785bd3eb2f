using System.Text.Json;
using Gateway.Server.Errors;
using Gateway.Server.Hosting;
using Gateway.Server.Observability;
using Gateway.Server.Records;
using Gateway.Server.Security;
using Gateway.Storage;
using Gateway.Storage.Records;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Groups;

/// <summary>
/// Consumer groups over plain HTTP. Every request names the group and member, and all state lives in the
/// coordinator, so any request can reach any server process behind a load balancer: no sticky sessions.
/// </summary>
public static class GroupsApi
{
    public static IEndpointRouteBuilder MapGroups(this IEndpointRouteBuilder app)
    {
        var groups = app.MapGroup("/v1/groups").WithTags("Groups");

        groups.MapPost("/{group}/members", JoinAsync).WithName("JoinGroup").RequireGroup(Operations.Consume)
            .WithSummary("Join a consumer group")
            .WithDescription("Joins with the topics to read and gets a lease (`sessionTimeoutMs`) and the partitions this member may read in the group's generation. With the `memberId` of a member whose lease still runs, takes its place without a rebalance (static membership). A partition moving from another member is granted once that member has seen the new generation (heartbeat or fetch) or its lease expired.")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(409).ProducesProblem(503);
        groups.MapPost("/{group}/members/{memberId}/heartbeat", HeartbeatAsync).WithName("Heartbeat").RequireGroup(Operations.Consume)
            .WithSummary("Renew a member's lease")
            .WithDescription("Renews the lease and returns the current generation and assignment. 404 `unknown_member` once the lease has expired: join again.")
            .ProducesProblem(404).ProducesProblem(503);
        groups.MapDelete("/{group}/members/{memberId}", LeaveAsync).WithName("LeaveGroup").RequireGroup(Operations.Consume)
            .WithSummary("Leave a consumer group")
            .WithDescription("Ends the member's lease at once; its partitions move to the remaining members in the next generation. Offsets stay committed.")
            .ProducesProblem(404).ProducesProblem(503);
        groups.MapGet("/{group}/members/{memberId}/records", FetchAsync).WithName("FetchAsMember").RequireGroup(Operations.Consume).ProducesProblem(429)
            .WithSummary("Fetch records as a group member (long-poll)")
            .WithDescription("Reads across every partition the member holds, from its position in this session, else the committed offset, else `autoOffsetReset`. With `waitMs`, answers on the first record committed in any of them. Renews the lease. A position below a partition's begin offset (after retention) moves to it, and `resets` says so.")
            .Produces<MemberFetchResponse>(200)
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(503);
        groups.MapPost("/{group}/members/{memberId}/offsets", CommitAsync).WithName("CommitOffsets").RequireGroup(Operations.Consume)
            .WithSummary("Commit offsets")
            .WithDescription("Commits the next offset to read (Kafka's convention) per partition, for the member's current `generation`; without `offsets`, commits everything fetched so far. 409 `stale_generation` or `partition_not_assigned` and 404 `unknown_member` change nothing.")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(409).ProducesProblem(416).ProducesProblem(503);
        groups.MapGet("/", ListAsync).WithName("ListGroups").RequireAuthenticated().WithSummary("List consumer groups")
            .WithDescription("Every group with committed offsets or members: its name, generation and member count.");
        groups.MapGet("/{group}", DescribeAsync).WithName("DescribeGroup").RequireGroup(Operations.AnyOnGroup)
            .WithSummary("Describe a consumer group")
            .WithDescription("Members with what they hold (and what is pending a handoff), generation, and per partition the committed offset, end offset and lag.")
            .ProducesProblem(404).ProducesProblem(503);
        groups.MapPut("/{group}/offsets", ResetOffsetsAsync).WithName("ResetOffsets").RequireGroup(Operations.Admin)
            .WithSummary("Move a group's committed offsets (reprocessing)")
            .WithDescription("`to`: `\"earliest\"`, `\"latest\"`, `{\"offset\":N}` or `{\"timestamp\":T}`. Active members continue from the new offsets.")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(416).ProducesProblem(503);
        groups.MapDelete("/{group}", DeleteAsync).WithName("DeleteGroup").RequireGroup(Operations.Admin)
            .WithSummary("Delete a consumer group without members")
            .WithDescription("Forgets the group's committed offsets. 409 `group_not_empty` while a member holds a lease.")
            .ProducesProblem(404).ProducesProblem(409).ProducesProblem(503);
        return app;
    }

    private static async Task<Created<MemberResponse>> JoinAsync(
        string group, JoinRequest request, IGroupCoordinator groups, ILogStorage store, IOptions<GroupOptions> options, AccessControl access, HttpContext context)
    {
        RequestChecks.GroupName(group);
        RequestChecks.NotHeldByKafka(group, context);
        if (request.Topics is not { Count: > 0 } topics)
        {
            throw ApiException.BadRequest("invalid_request", "A member reads at least one topic: {\"topics\":[...]}.");
        }
        foreach (string topic in topics)
        {
            access.Demand(context, ResourceKind.Topic, topic, Operations.Fetch);
            store.GetTopic(topic);
        }
        RequestChecks.SessionTimeout(request.SessionTimeoutMs, options.Value);
        if (request.MemberId is { } id && !TopicName.IsValid(id))
        {
            throw ApiException.BadRequest("invalid_member_id", "A member id is 1-249 characters of [a-zA-Z0-9._-].");
        }
        var assignment = await groups.JoinAsync(group, request.MemberId, topics, request.SessionTimeoutMs, request.AutoOffsetReset ?? OffsetReset.Latest, access.PrincipalOf(context));
        return TypedResults.Created($"/v1/groups/{group}/members/{assignment.MemberId}", ResponseOf(assignment, access, context));
    }

    // A member belongs to the principal that joined it: any other principal naming it is told it does not exist.
    private static async Task<Ok<MemberResponse>> HeartbeatAsync(string group, string memberId, IGroupCoordinator groups, AccessControl access, HttpContext context) =>
        TypedResults.Ok(ResponseOf(await groups.HeartbeatAsync(group, memberId, access.PrincipalOf(context)), access, context));

    private static async Task<NoContent> LeaveAsync(string group, string memberId, IGroupCoordinator groups, AccessControl access, HttpContext context)
    {
        await groups.LeaveAsync(group, memberId, access.PrincipalOf(context));
        return TypedResults.NoContent();
    }

    private static async Task<MemberFetchResult> FetchAsync(
        string group, string memberId, int? limit, int? maxBytes, int? waitMs,
        IGroupCoordinator groups, ILogStorage store, GatewayMetrics metrics, IOptions<ApiLimits> options, TimeProvider time, HttpContext context,
        IHostApplicationLifetime lifetime)
    {
        var limits = options.Value;
        int maxRecords = RequestChecks.InRange(limit ?? limits.DefaultFetchRecords, 1, limits.MaxFetchRecords, "limit");
        int bytes = RequestChecks.InRange(maxBytes ?? limits.DefaultFetchBytes, 1, limits.MaxFetchBytes, "maxBytes");
        int wait = RequestChecks.InRange(waitMs ?? 0, 0, limits.MaxWaitMs, "waitMs");
        var deadline = time.GetUtcNow().AddMilliseconds(wait);
        var resets = new List<PositionReset>();
        var access = context.RequestServices.GetRequiredService<AccessControl>();
        string principal = access.PrincipalOf(context);
        IReadOnlyCollection<string>? allowedTopics = null;
        Quotas.WaitSlot slot = default;
        try
        {
            while (true)
            {
                // One turn per pass: the session positions in the coordinator are the truth, also across requests.
                var share = new MemberShare(groups, store, group, memberId, principal);
                var plan = await share.BeginTurnAsync(null, resets);
                if (allowedTopics is null || !allowedTopics.SequenceEqual(plan.Assignment.Topics))
                {
                    // Checked whenever the member's topics are other than last checked (a rejoin while this waits):
                    // nothing is read through a member that the caller may not fetch itself.
                    foreach (string topic in plan.Assignment.Topics)
                    {
                        access.Demand(context, ResourceKind.Topic, topic, Operations.Fetch);
                    }
                    allowedTopics = plan.Assignment.Topics;
                }
                var sets = await share.ReadAsync(plan.Assignment.Generation, maxRecords, bytes, context.RequestAborted);
                await share.AdvanceAsync();
                var remaining = deadline - time.GetUtcNow();
                // A server that stops answers at once with what there is, as if waitMs had passed.
                if (sets.Count > 0 || remaining <= TimeSpan.Zero || lifetime.ApplicationStopping.IsCancellationRequested)
                {
                    foreach (var (tp, set) in sets)
                    {
                        metrics.Fetched(tp.Topic, set.Count, set.Bytes);
                    }
                    return new MemberFetchResult(plan.Assignment, sets, resets);
                }
                if (!slot.Held)
                {
                    slot = Quotas.EnterWait(context); // only a request that really waits takes a long-poll slot
                }
                // Wait for the first commit in any held partition, a change of assignment, or the end of this slice;
                // slices no longer than the heartbeat interval keep the lease alive while the client waits.
                var slice = TimeSpan.FromMilliseconds(Math.Min(remaining.TotalMilliseconds, plan.Assignment.HeartbeatIntervalMs));
                using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
                using var waiting = metrics.FetchWaiting();
                await share.WhenRecordOr([plan.AssignmentChanged, Task.Delay(slice, time, cancel.Token)]);
                await cancel.CancelAsync();
                context.RequestAborted.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            slot.Dispose();
        }
    }

    private static async Task<Ok<CommitResponse>> CommitAsync(
        string group, string memberId, CommitRequest request, IGroupCoordinator groups, ILogStorage store, AccessControl access, HttpContext context)
    {
        if (request.Generation is not long generation)
        {
            throw ApiException.BadRequest("invalid_request", "A commit names the member's generation: {\"generation\":N}.");
        }
        Dictionary<TopicPartition, long>? offsets = null;
        if (request.Offsets is { } given)
        {
            offsets = [];
            foreach (var o in given)
            {
                // A topic the caller may not see is validated as one that does not exist (the member cannot hold it
                // either: 409 partition_not_assigned), so that the answer tells nothing about it.
                if (access.CanSee(context, ResourceKind.Topic, o.Topic) && store.TryGetTopic(o.Topic, out var topic) && o.Partition >= 0 && o.Partition < topic.PartitionCount)
                {
                    var partition = topic.GetPartition(o.Partition);
                    if (o.Offset < 0 || o.Offset > partition.EndOffset)
                    {
                        // Beyond this node's view, which may lag the log (the member read through another node).
                        var (begin, end) = o.Offset < 0 ? (partition.BeginOffset, partition.EndOffset) : await partition.CurrentOffsetsAsync(context.RequestAborted);
                        if (o.Offset < 0 || o.Offset > end)
                        {
                            throw new OffsetOutOfRangeException(o.Offset, begin, end);
                        }
                    }
                }
                offsets[new TopicPartition(o.Topic, o.Partition)] = o.Offset;
            }
        }
        var committed = await groups.CommitAsync(group, memberId, generation, offsets, access.PrincipalOf(context));
        return TypedResults.Ok(new CommitResponse(generation, [.. committed.OrderBy(c => c.Key).Select(c => new PartitionOffset(c.Key.Topic, c.Key.Partition, c.Value))]));
    }

    private static async Task<Ok<GroupList>> ListAsync(IGroupCoordinator groups, AccessControl access, HttpContext context) =>
        TypedResults.Ok(new GroupList([.. (await groups.ListAsync()).Where(g => access.CanSee(context, ResourceKind.Group, g.Name)).Select(g => new GroupSummary(g.Name, g.Generation, g.Members.Count))]));

    private static async Task<Ok<GroupView>> DescribeAsync(string group, IGroupCoordinator groups, ILogStorage store, AccessControl access, HttpContext context)
    {
        var description = await groups.DescribeAsync(group);
        bool Visible(string topic) => access.CanSee(context, ResourceKind.Topic, topic);
        var partitions = description.CommittedOffsets.Keys
            .Concat(description.Members.SelectMany(m => m.Topics).Distinct().SelectMany(t => PartitionsOf(store, t)))
            .Distinct()
            .Order();
        var offsets = new List<GroupOffsetView>();
        foreach (var tp in partitions)
        {
            if (!store.TryGetTopic(tp.Topic, out var topic) || tp.Partition >= topic.PartitionCount || !access.CanSee(context, ResourceKind.Topic, tp.Topic))
            {
                continue;
            }
            long end = topic.GetPartition(tp.Partition).EndOffset;
            long? committed = description.CommittedOffsets.TryGetValue(tp, out long c) ? c : null;
            offsets.Add(new GroupOffsetView(tp.Topic, tp.Partition, committed, end, committed is long value ? Math.Max(0, end - value) : null));
        }
        return TypedResults.Ok(new GroupView(
            description.Name,
            description.Generation,
            // Other members' topics the caller may not see are left out, as in every list.
            [.. description.Members.Select(m => new GroupMemberView(
                m.MemberId,
                [.. m.Topics.Where(Visible)],
                Refs(m.Assignments.Where(tp => Visible(tp.Topic))),
                Refs(m.Pending.Where(tp => Visible(tp.Topic))),
                m.LeaseExpiresAt,
                m.SessionTimeoutMs))],
            offsets));
    }

    private static async Task<Ok<ResetOffsetsResponse>> ResetOffsetsAsync(
        string group, ResetOffsetsRequest request, IGroupCoordinator groups, ILogStorage store, AccessControl access, HttpContext context)
    {
        RequestChecks.GroupName(group);
        if (request.Topic is null)
        {
            throw ApiException.BadRequest("invalid_request", "Name the topic whose offsets move: {\"topic\":\"...\",\"to\":...}.");
        }
        var target = ParseTarget(request.To);
        access.Demand(context, ResourceKind.Topic, request.Topic, Operations.Fetch, Operations.Admin);
        var topic = store.GetTopic(request.Topic);
        var partitions = request.Partitions ?? [.. Enumerable.Range(0, topic.PartitionCount)];
        var offsets = new Dictionary<TopicPartition, long>();
        foreach (int p in partitions)
        {
            var partition = topic.GetPartition(p);
            offsets[new TopicPartition(topic.Name, p)] = await target(partition);
        }
        await groups.ResetOffsetsAsync(group, offsets);
        return TypedResults.Ok(new ResetOffsetsResponse([.. offsets.OrderBy(o => o.Key).Select(o => new PartitionOffset(o.Key.Topic, o.Key.Partition, o.Value))]));
    }

    private static async Task<NoContent> DeleteAsync(string group, IGroupCoordinator groups)
    {
        await groups.DeleteAsync(group);
        return TypedResults.NoContent();
    }

    /// <summary>
    /// The reset target, checked whole before any partition moves: <c>"earliest"</c>, <c>"latest"</c>, or an object with
    /// exactly one of <c>offset</c> and <c>timestamp</c>, a non-negative JSON integer. Anything else is 400
    /// <c>invalid_reset_target</c>; the returned function gives the offset for a partition.
    /// </summary>
    private static Func<IPartition, ValueTask<long>> ParseTarget(JsonElement to)
    {
        switch (to.ValueKind)
        {
            case JsonValueKind.String when to.ValueEquals("earliest"u8):
                return async partition => (await partition.CurrentOffsetsAsync()).Begin;
            case JsonValueKind.String when to.ValueEquals("latest"u8):
                return async partition => (await partition.CurrentOffsetsAsync()).End;
            case JsonValueKind.Object:
                JsonProperty? only = null;
                foreach (var property in to.EnumerateObject())
                {
                    if (only is not null)
                    {
                        throw InvalidTarget();
                    }
                    only = property;
                }
                if (only is not { } given || given.Value.ValueKind != JsonValueKind.Number || !given.Value.TryGetInt64(out long value) || value < 0)
                {
                    throw InvalidTarget();
                }
                if (given.NameEquals("offset"u8))
                {
                    return async partition =>
                    {
                        var (begin, end) = await partition.CurrentOffsetsAsync();
                        return value >= begin && value <= end ? value : throw new OffsetOutOfRangeException(value, begin, end);
                    };
                }
                if (given.NameEquals("timestamp"u8))
                {
                    return partition => partition.OffsetForTimestampAsync(value);
                }
                throw InvalidTarget();
            default:
                throw InvalidTarget();
        }

        static ApiException InvalidTarget() =>
            ApiException.BadRequest("invalid_reset_target", "\"to\" is \"earliest\", \"latest\", {\"offset\":N} or {\"timestamp\":T}, with N and T non-negative integers.");
    }

    private static IEnumerable<TopicPartition> PartitionsOf(ILogStorage store, string topic) =>
        store.TryGetTopic(topic, out var t) ? Enumerable.Range(0, t.PartitionCount).Select(p => new TopicPartition(topic, p)) : [];

    private static MemberResponse ResponseOf(MemberAssignment a, AccessControl access, HttpContext context) =>
        new(
            a.MemberId,
            a.Generation,
            Refs(a.Assignments.Where(tp => access.CanSee(context, ResourceKind.Topic, tp.Topic))),
            [.. a.Topics.Where(t => access.CanSee(context, ResourceKind.Topic, t))],
            a.AutoOffsetReset,
            a.LeaseExpiresAt,
            a.HeartbeatIntervalMs);

    private static List<PartitionRef> Refs(IEnumerable<TopicPartition> partitions) => [.. partitions.Select(tp => new PartitionRef(tp.Topic, tp.Partition))];

    /// <summary>Writes a member fetch answer straight from the stored batches.</summary>
    private sealed class MemberFetchResult(MemberAssignment assignment, List<(TopicPartition Partition, RecordSet Records)> sets, List<PositionReset> resets) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            try
            {
                httpContext.Response.StatusCode = StatusCodes.Status200OK;
                httpContext.Response.ContentType = "application/json; charset=utf-8";
                await httpContext.Response.SendPooledAsync(SizeHint(), Write, httpContext.RequestAborted);
            }
            finally
            {
                foreach (var (_, records) in sets)
                {
                    records.Dispose();
                }
            }
        }

        private int SizeHint() => (int)Math.Min(int.MaxValue / 2, sets.Sum(s => (s.Records.Bytes * 3 / 2) + (s.Records.Count * 96L)) + 1024);

        private void Write(System.Buffers.IBufferWriter<byte> body)
        {
            using var writer = new Utf8JsonWriter(body, RecordJson.WriterOptions);
            writer.WriteStartObject();
            writer.WriteString("memberId", assignment.MemberId);
            writer.WriteNumber("generation", assignment.Generation);
            writer.WriteStartArray("assignments");
            foreach (var tp in assignment.Assignments)
            {
                writer.WriteStartObject();
                writer.WriteString("topic", tp.Topic);
                writer.WriteNumber("partition", tp.Partition);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartArray("records");
            foreach (var (tp, records) in sets)
            {
                var topic = JsonEncodedText.Encode(tp.Topic);
                foreach (var record in records)
                {
                    RecordJson.Write(writer, topic, tp.Partition, record);
                }
            }
            writer.WriteEndArray();
            if (resets.Count > 0)
            {
                writer.WriteStartArray("resets");
                foreach (var reset in resets)
                {
                    writer.WriteStartObject();
                    writer.WriteString("topic", reset.Topic);
                    writer.WriteNumber("partition", reset.Partition);
                    writer.WriteNumber("offset", reset.Offset);
                    writer.WriteNumber("resetTo", reset.ResetTo);
                    writer.WriteString("reason", reset.Reason);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
            writer.Flush();
        }
    }
}
