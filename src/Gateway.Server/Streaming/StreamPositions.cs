using System.Globalization;
using Gateway.Server.Errors;
using Gateway.Server.Groups;
using Gateway.Storage;

namespace Gateway.Server.Streaming;

/// <summary>Where a stream starts: the positions of a <c>Last-Event-ID</c>, or those a topic stream's <c>from</c> names.</summary>
internal static class StreamPositions
{
    /// <summary>
    /// The positions of a <c>Last-Event-ID</c>, which must be one this server sent for a stream of these topics: a
    /// cursor of another topic would otherwise resume nothing and silently replay from the start.
    /// </summary>
    public static Dictionary<TopicPartition, long> ReadCursor(HttpContext context, string? lastEventId, IReadOnlyCollection<string> topics)
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

    /// <summary>
    /// Adds the topic's partitions (or only <paramref name="only"/>) that have no position yet: at the cursor's
    /// position, else (a resumed stream whose cursor predates the partition) at its begin offset, else where
    /// <paramref name="from"/> says.
    /// </summary>
    public static async ValueTask AddPartitionsAsync(ITopic topic, int? only, string? from, Dictionary<TopicPartition, long> cursor, Dictionary<TopicPartition, long> positions, List<PositionReset> resets, CancellationToken cancellationToken)
    {
        long? fixedOffset = from switch
        {
            null or "latest" or "earliest" => null,
            _ when long.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out long n) => n,
            _ => throw ApiException.BadRequest("invalid_parameter", "from is 'earliest', 'latest' or an offset."),
        };
        var partitions = only is int p ? [p] : Enumerable.Range(0, topic.PartitionCount);
        foreach (int partition in partitions)
        {
            var tp = new TopicPartition(topic.Name, partition);
            if (positions.ContainsKey(tp))
            {
                continue;
            }
            var log = topic.GetPartition(partition);
            long start = cursor.TryGetValue(tp, out long resumed) ? resumed
                : cursor.Count > 0 ? log.BeginOffset
                : fixedOffset ?? (from == "earliest" ? log.BeginOffset : log.EndOffset);
            if (fixedOffset is long n && cursor.Count == 0 && n > log.EndOffset)
            {
                var (begin, end) = await log.CurrentOffsetsAsync(cancellationToken);
                if (n > end)
                {
                    throw new OffsetOutOfRangeException(n, begin, end);
                }
            }
            positions[tp] = await PositionRange.ClampAsync(tp, start, log, resets, cancellationToken);
        }
    }
}
