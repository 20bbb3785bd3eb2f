using Gateway.Server.Streaming;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Server.Tests.Streaming;

/// <summary>The shared keep-alive timer: every phase ticks once per period, and a tick wakes one phase only.</summary>
public sealed class KeepAliveTickerTests
{
    [Fact]
    public void Each_phase_ticks_once_per_period_and_the_phases_tick_at_different_times()
    {
        var time = new FakeTimeProvider();
        using var ticker = new KeepAliveTicker(Options.Create(new StreamingOptions { KeepAliveSeconds = 32 }), time);
        var phases = Enumerable.Range(0, KeepAliveTicker.Phases).Select(_ => ticker.AssignPhase()).ToList();
        Assert.Equal(KeepAliveTicker.Phases, phases.Distinct().Count());

        var waits = phases.Select(ticker.NextTick).ToList();
        var completedAt = new int[waits.Count];
        for (int second = 1; second <= 32; second++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            int newlyDone = 0;
            for (int i = 0; i < waits.Count; i++)
            {
                if (waits[i].IsCompleted && completedAt[i] == 0)
                {
                    completedAt[i] = second;
                    newlyDone++;
                }
            }
            Assert.Equal(1, newlyDone); // one slice of the streams per tick
        }
        Assert.All(completedAt, at => Assert.InRange(at, 1, 32));

        // The next period: each phase ticks again, no sooner than a period after its last tick.
        var again = phases.Select(ticker.NextTick).ToList();
        Assert.All(again, t => Assert.False(t.IsCompleted));
        time.Advance(TimeSpan.FromSeconds(32));
        Assert.All(again, t => Assert.True(t.IsCompleted));
    }
}
