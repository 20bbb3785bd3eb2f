using Gateway.Storage;

namespace Gateway.Server.Groups;

/// <summary>Positions in a partition's range, and waits for the records after them: shared by every reader of positions.</summary>
public static class PositionRange
{
    /// <summary>Keeps a position inside the partition's range [begin, end]; a move is added to <paramref name="resets"/>.</summary>
    public static long Clamp(TopicPartition tp, long position, IPartition partition, List<PositionReset> resets) =>
        Clamp(tp, position, partition.BeginOffset, partition.EndOffset, resets);

    /// <summary>
    /// As <see cref="Clamp(TopicPartition, long, IPartition, List{PositionReset})"/> for a position learned elsewhere (a
    /// committed offset, a cursor another node sent): outside this node's view, the log is asked before anything moves.
    /// </summary>
    public static async ValueTask<long> ClampAsync(TopicPartition tp, long position, IPartition partition, List<PositionReset> resets, CancellationToken cancellationToken = default)
    {
        if (position >= partition.BeginOffset && position <= partition.EndOffset)
        {
            return position;
        }
        var (begin, end) = await partition.CurrentOffsetsAsync(cancellationToken);
        return Clamp(tp, position, begin, end, resets);
    }

    private static long Clamp(TopicPartition tp, long position, long begin, long end, List<PositionReset> resets)
    {
        if (position >= begin && position <= end)
        {
            return position;
        }
        long moved = position < begin ? begin : end;
        resets.Add(new PositionReset(tp.Topic, tp.Partition, position, moved, "offset_out_of_range"));
        return moved;
    }

    /// <summary>
    /// Completes with the first of: a commit at a position in a partition that has not failed (waiting on one that
    /// failed would spin; reads of it fail loudly), or one of <paramref name="others"/> (a keep-alive tick, the
    /// request's end, ...).
    /// </summary>
    public static Task<Task> WhenRecordOr(Dictionary<TopicPartition, long> positions, Func<TopicPartition, IPartition> partitionOf, ReadOnlySpan<Task> others)
    {
        var tasks = new List<Task>(positions.Count + others.Length);
        tasks.AddRange(others);
        foreach (var (tp, offset) in positions)
        {
            var partition = partitionOf(tp);
            if (partition.Failure is null)
            {
                tasks.Add(partition.NextCommit(offset));
            }
        }
        return Task.WhenAny(tasks);
    }
}
