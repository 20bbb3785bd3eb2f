using System.IO.Pipelines;
using System.Text.Json;
using Gateway.Server.Errors;
using Gateway.Server.Hosting;
using Gateway.Server.Observability;
using Gateway.Server.Records;
using Gateway.Server.Security;
using Gateway.Storage;
using Gateway.Storage.Records;
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
            .ProducesProblem(400).ProducesProblem(404);
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
        var cursor = ReadCursor(context, lastEventId, [topic]);
        var positions = new Dictionary<TopicPartition, long>();
        var resets = new List<(TopicPartition, long, long)>();
        AddPartitions(log, partition, from, cursor, positions, resets);

        var body = StartStream(context, settings);
        WriteResets(body, resets);
        // Ends when the client leaves or the server stops: a stream then ends cleanly instead of holding up shutdown.
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var cancel = ending.Token;
        using var subscriber = metrics.StreamOpened(group: false);
        int phase = ticker.AssignPhase();
        // The one registration of this stream on the request's end; each idle wait adds nothing but its WhenAny.
        var ended = Task.Delay(Timeout.Infinite, cancel);
        try
        {
            await context.Response.StartAsync(cancel);
            await FlushAsync(context, settings, cancel);
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
                    AddPartitions(log, null, "earliest", cursor, positions, resets);
                    WriteResets(body, resets);
                }
                bool sent = Send(body, positions, partitionOf, topicName, cache, settings, resets);
                if (sent)
                {
                    await FlushAsync(context, settings, cancel);
                    continue;
                }
                var tick = ticker.NextTick(phase);
                var woken = await WhenRecordOr(positions, partitionOf, [tick, ended]);
                cancel.ThrowIfCancellationRequested();
                if (woken == tick)
                {
                    await SendKeepAliveAsync(context, settings, cancel);
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
        var settings = options.Value;
        RequestChecks.GroupName(group);
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
        var cursor = ReadCursor(context, lastEventId, names);
        // The stream's member is its caller's own: no other principal can name it (rejoin it with other topics, commit
        // or read through it), so what was checked above holds for the life of the stream.
        string owner = access.PrincipalOf(context);
        var member = groups.Join(group, null, names, sessionTimeoutMs, reset, owner);

        var positions = new Dictionary<TopicPartition, long>();
        var flushed = new Dictionary<TopicPartition, long>(); // what the client has been sent: the only thing ever committed
        var resets = new List<(TopicPartition, long, long)>();
        long generation = member.Generation;
        long resetVersion = -1;
        // Ends when the client leaves or the server stops: then it commits what it sent and leaves (finally, below).
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var cancel = ending.Token;
        var body = StartStream(context, settings);
        using var subscriber = metrics.StreamOpened(group: true);
        int phase = ticker.AssignPhase();
        var ended = Task.Delay(Timeout.Infinite, cancel);
        try
        {
            await context.Response.StartAsync(cancel);
            await FlushAsync(context, settings, cancel);
            var lastCommit = time.GetUtcNow();
            while (!cancel.IsCancellationRequested)
            {
                var plan = groups.BeginFetch(group, member.MemberId, owner);
                generation = plan.Assignment.Generation;
                if (plan.ResetVersion != resetVersion)
                {
                    // The group's offsets were reset (or this is the first turn): read from the committed offsets.
                    positions.Clear();
                    flushed.Clear();
                    if (resetVersion >= 0)
                    {
                        cursor.Clear();
                    }
                    resetVersion = plan.ResetVersion;
                }
                foreach (var gone in positions.Keys.Where(tp => !plan.Positions.ContainsKey(tp)).ToList())
                {
                    positions.Remove(gone);
                    flushed.Remove(gone);
                }
                foreach (var (tp, committed) in plan.Positions)
                {
                    if (positions.ContainsKey(tp) || !store.TryGetTopic(tp.Topic, out var t) || tp.Partition >= t.PartitionCount)
                    {
                        continue;
                    }
                    var log = t.GetPartition(tp.Partition);
                    // A cursor position is used once: a partition that comes back later continues from what was committed.
                    long start = cursor.Remove(tp, out long resumed) ? resumed
                        : committed ?? (reset == OffsetReset.Earliest ? log.BeginOffset : log.EndOffset);
                    positions[tp] = Clamp(tp, start, log, resets);
                }
                WriteResets(body, resets);
                bool sent = Send(body, positions, tp => store.GetTopic(tp.Topic).GetPartition(tp.Partition), null, cache, settings, resets);
                if (sent)
                {
                    await FlushAsync(context, settings, cancel);
                    foreach (var (tp, offset) in positions)
                    {
                        flushed[tp] = offset;
                    }
                    groups.AdvancePositions(group, member.MemberId, flushed, resetVersion, owner);
                    if ((time.GetUtcNow() - lastCommit).TotalMilliseconds >= settings.CommitIntervalMs)
                    {
                        await TryCommitAsync(groups, group, member.MemberId, generation, flushed);
                        lastCommit = time.GetUtcNow();
                    }
                    continue;
                }
                // Idle: wake on a commit in a held partition, a change of assignment, the keep-alive tick, or in time
                // to renew the lease.
                using var renewal = new CancellationTokenSource();
                var tick = ticker.NextTick(phase);
                var woken = await WhenRecordOr(
                    positions, tp => store.GetTopic(tp.Topic).GetPartition(tp.Partition),
                    [tick, ended, plan.AssignmentChanged, Task.Delay(TimeSpan.FromMilliseconds(plan.Assignment.HeartbeatIntervalMs), time, renewal.Token)]);
                await renewal.CancelAsync();
                cancel.ThrowIfCancellationRequested();
                if (woken == tick)
                {
                    await SendKeepAliveAsync(context, settings, cancel);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The client left, or stopped reading and was disconnected, or the server is stopping.
        }
        catch (Exception ex) when (ex is UnknownMemberException or TopicNotFoundException)
        {
            // The lease ran out or a topic went away: the stream ends; the client reconnects and joins again.
        }
        finally
        {
            groups.AdvancePositions(group, member.MemberId, flushed, resetVersion, owner);
            await TryCommitAsync(groups, group, member.MemberId, generation, flushed);
            try
            {
                groups.Leave(group, member.MemberId, owner);
            }
            catch (UnknownMemberException)
            {
            }
        }
    }

    /// <summary>
    /// The positions of a <c>Last-Event-ID</c>, which must be one this server sent for a stream of these topics: a
    /// cursor of another topic would otherwise resume nothing and silently replay from the start.
    /// </summary>
    private static Dictionary<TopicPartition, long> ReadCursor(HttpContext context, string? lastEventId, IReadOnlyCollection<string> topics)
    {
        string? text = context.Request.Headers["Last-Event-ID"].FirstOrDefault() ?? lastEventId;
        if (text is null)
        {
            return [];
        }
        if (!EventCursor.TryDecode(text, out var positions))
        {
            throw ApiException.BadRequest("invalid_cursor", "Last-Event-ID is not an event id this server sent.");
        }
        if (positions.Keys.FirstOrDefault(tp => !topics.Contains(tp.Topic)) is { Topic: { } other })
        {
            throw ApiException.BadRequest("invalid_cursor", $"Last-Event-ID is a position in topic '{other}', not in this stream's topics.");
        }
        return positions;
    }

    private static void AddPartitions(ITopic log, int? only, string? from, Dictionary<TopicPartition, long> cursor, Dictionary<TopicPartition, long> positions, List<(TopicPartition, long, long)> resets)
    {
        long? fixedOffset = from switch
        {
            null or "latest" or "earliest" => null,
            _ when long.TryParse(from, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) => n,
            _ => throw ApiException.BadRequest("invalid_parameter", "from is 'earliest', 'latest' or an offset."),
        };
        var partitions = only is int p ? [p] : Enumerable.Range(0, log.PartitionCount);
        foreach (int partition in partitions)
        {
            var tp = new TopicPartition(log.Name, partition);
            if (positions.ContainsKey(tp))
            {
                continue;
            }
            var partitionLog = log.GetPartition(partition);
            long start = cursor.TryGetValue(tp, out long resumed) ? resumed
                : cursor.Count > 0 ? partitionLog.BeginOffset // a resumed stream whose cursor predates this partition: read it all
                : fixedOffset ?? (from == "earliest" ? partitionLog.BeginOffset : partitionLog.EndOffset);
            if (fixedOffset is long n && cursor.Count == 0 && n > partitionLog.EndOffset)
            {
                throw new OffsetOutOfRangeException(n, partitionLog.BeginOffset, partitionLog.EndOffset);
            }
            positions[tp] = Clamp(tp, start, partitionLog, resets);
        }
    }

    /// <summary>Keeps a position inside the partition's range; a move is reported to the client as a reset event.</summary>
    private static long Clamp(TopicPartition tp, long position, IPartition log, List<(TopicPartition, long, long)> resets)
    {
        long begin = log.BeginOffset, end = log.EndOffset;
        if (position >= begin && position <= end)
        {
            return position;
        }
        long moved = position < begin ? begin : end;
        resets.Add((tp, position, moved));
        return moved;
    }

    private static PipeWriter StartStream(HttpContext context, StreamingOptions settings)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache, no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        SseWriter.Retry(response.BodyWriter, settings.RetryMs);
        return response.BodyWriter;
    }

    private static void WriteResets(PipeWriter body, List<(TopicPartition Partition, long From, long To)> resets)
    {
        foreach (var (tp, from, to) in resets)
        {
            byte[] data = JsonSerializer.SerializeToUtf8Bytes(new { topic = tp.Topic, partition = tp.Partition, offset = from, resetTo = to, reason = "offset_out_of_range" });
            SseWriter.Event(body, (string?)null, "reset", data);
        }
        resets.Clear();
    }

    [ThreadStatic]
    private static List<TopicPartition>? t_order;

    /// <summary>Writes the records available at each position (a batch per partition, partitions in turn); true if any.</summary>
    private static bool Send(
        PipeWriter body, Dictionary<TopicPartition, long> positions, Func<TopicPartition, IPartition> partitionOf,
        JsonEncodedText? topicName, SharedEventCache cache, StreamingOptions settings, List<(TopicPartition, long, long)> resets)
    {
        bool any = false;
        foreach (var (tp, position) in positions)
        {
            // Checked first without allocating: an idle stream wakes here at every keep-alive tick.
            any |= partitionOf(tp).EndOffset > position;
        }
        if (!any)
        {
            return false;
        }
        bool sent = false;
        // The partitions in order, in a scratch list (Send never awaits): this runs once per wake of every stream.
        var order = t_order ??= [];
        order.Clear();
        order.AddRange(positions.Keys);
        order.Sort();
        foreach (var tp in order)
        {
            var log = partitionOf(tp);
            long position = positions[tp];
            if (log.EndOffset <= position)
            {
                continue;
            }
            if (position < log.BeginOffset)
            {
                // Records were deleted under this subscriber: it continues at the begin offset, and says so.
                positions[tp] = position = Clamp(tp, position, log, resets);
                WriteResets(body, resets);
            }
            if (cache.TryCollect(log, position, settings.BatchRecords, 1024 * 1024, out var shared))
            {
                // Every record is in the shared ring: subscribers at the tail read neither the log nor encode anything.
                foreach (byte[] json in shared.Json)
                {
                    positions[tp] = ++position;
                    SseWriter.Event(body, positions, "record", json);
                }
                sent = true;
                continue;
            }
            var name = topicName ?? JsonEncodedText.Encode(tp.Topic);
            RecordSet records;
            try
            {
                records = log.Read(position, settings.BatchRecords, 1024 * 1024);
            }
            catch (OffsetOutOfRangeException)
            {
                // Retention moved the begin offset between the check above and the read: continue from it.
                positions[tp] = Clamp(tp, position, log, resets);
                WriteResets(body, resets);
                continue;
            }
            using var owned = records;
            foreach (var record in records)
            {
                positions[tp] = record.Offset + 1;
                SseWriter.Event(body, positions, "record", cache.Get(log, name, record));
                sent = true;
            }
        }
        return sent;
    }

    /// <summary>
    /// Completes with the first of: a commit in a partition the stream holds (one that has not failed: waiting on it
    /// would spin; reads of it fail loudly) or one of <paramref name="others"/> (the keep-alive tick, the request's
    /// end, ...). Partitions' commit signals are shared by all their readers, so an idle stream holds no registration
    /// per wait, only this one continuation.
    /// </summary>
    private static Task<Task> WhenRecordOr(Dictionary<TopicPartition, long> positions, Func<TopicPartition, IPartition> partitionOf, ReadOnlySpan<Task> others)
    {
        var tasks = new List<Task>(positions.Count + others.Length);
        tasks.AddRange(others);
        foreach (var (tp, offset) in positions)
        {
            var log = partitionOf(tp);
            if (log.Failure is null)
            {
                tasks.Add(log.NextCommit(offset));
            }
        }
        return Task.WhenAny(tasks);
    }

    private static async Task SendKeepAliveAsync(HttpContext context, StreamingOptions settings, CancellationToken cancel)
    {
        SseWriter.Comment(context.Response.BodyWriter, "keep-alive");
        await FlushAsync(context, settings, cancel);
    }

    /// <summary>Flushes; a subscriber whose socket does not drain within the send timeout is disconnected.</summary>
    private static async Task FlushAsync(HttpContext context, StreamingOptions settings, CancellationToken cancel)
    {
        var flush = context.Response.BodyWriter.FlushAsync(cancel);
        if (flush.IsCompletedSuccessfully)
        {
            return;
        }
        try
        {
            await flush.AsTask().WaitAsync(TimeSpan.FromMilliseconds(settings.SendTimeoutMs), cancel);
        }
        catch (TimeoutException)
        {
            context.Abort();
            throw new OperationCanceledException("The subscriber stopped reading.", cancel);
        }
    }

    private static async Task TryCommitAsync(IGroupCoordinator groups, string group, string memberId, long generation, Dictionary<TopicPartition, long> positions)
    {
        if (positions.Count == 0)
        {
            return;
        }
        try
        {
            await groups.CommitAsync(group, memberId, generation, positions);
        }
        catch (Exception ex) when (ex is StaleGenerationException or PartitionNotAssignedException or UnknownMemberException)
        {
            // A rebalance got there first; what was sent since the last commit may be delivered again (at least once).
        }
    }
}
