using Gateway.Server.Groups;
using Gateway.Storage;

namespace Gateway.Server.Streaming;

/// <summary>
/// A group's share streamed to one connection: the stream's member follows its assignment through rebalances, sends
/// what its partitions commit, records and commits only what the client has been sent (flushed), and on the way out
/// commits once more and leaves (at least once: what was sent after the last commit may come again).
/// </summary>
internal sealed class GroupStream(
    MemberShare share, IGroupCoordinator groups, string group, MemberAssignment member, string owner, EventStream stream,
    StreamingOptions settings, KeepAliveTicker ticker, TimeProvider time)
{
    /// <summary>What the client has been sent: the only thing ever committed.</summary>
    private readonly Dictionary<TopicPartition, long> _flushed = [];
    private long _generation = member.Generation;

    public async Task RunAsync(Dictionary<TopicPartition, long> cursor, CancellationToken cancel)
    {
        int phase = ticker.AssignPhase();
        var ended = Task.Delay(Timeout.Infinite, cancel);
        try
        {
            await stream.OpenAsync(cancel);
            var lastCommit = time.GetUtcNow();
            while (!cancel.IsCancellationRequested)
            {
                var plan = await share.BeginTurnAsync(cursor, stream.Resets);
                _generation = plan.Assignment.Generation;
                if (share.OffsetsReset)
                {
                    _flushed.Clear();
                }
                foreach (var tp in _flushed.Keys)
                {
                    if (!share.Positions.ContainsKey(tp))
                    {
                        _flushed.Remove(tp);
                    }
                }
                stream.WriteResets();
                if (await stream.SendAsync(share.Positions, share.PartitionOf, null, cancel))
                {
                    await stream.FlushAsync(cancel);
                    foreach (var (tp, offset) in share.Positions)
                    {
                        _flushed[tp] = offset;
                    }
                    await share.AdvanceAsync(_flushed);
                    if ((time.GetUtcNow() - lastCommit).TotalMilliseconds >= settings.CommitIntervalMs)
                    {
                        await TryCommitAsync();
                        lastCommit = time.GetUtcNow();
                    }
                    continue;
                }
                // Idle: wake on a commit in a held partition, a change of assignment, the keep-alive tick, or in time
                // to renew the lease.
                using var renewal = new CancellationTokenSource();
                var tick = ticker.NextTick(phase);
                var woken = await share.WhenRecordOr(
                    [tick, ended, plan.AssignmentChanged, Task.Delay(TimeSpan.FromMilliseconds(plan.Assignment.HeartbeatIntervalMs), time, renewal.Token)]);
                await renewal.CancelAsync();
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
        catch (Exception ex) when (ex is UnknownMemberException or TopicNotFoundException)
        {
            // The lease ran out or a topic went away: the stream ends; the client reconnects and joins again.
        }
        finally
        {
            await LeaveAsync();
        }
    }

    private async Task LeaveAsync()
    {
        try
        {
            await share.AdvanceAsync(_flushed);
            await TryCommitAsync();
            await groups.LeaveAsync(group, member.MemberId, owner);
        }
        catch (UnknownMemberException)
        {
        }
    }

    private async Task TryCommitAsync()
    {
        if (_flushed.Count == 0)
        {
            return;
        }
        try
        {
            await groups.CommitAsync(group, member.MemberId, _generation, _flushed);
        }
        catch (Exception ex) when (ex is StaleGenerationException or PartitionNotAssignedException or UnknownMemberException)
        {
            // A rebalance got there first; what was sent since the last commit may be delivered again (at least once).
        }
    }
}
