using Gateway.Storage;

namespace Gateway.Log.Tests;

/// <summary>The appends waiting for a commit: released together, from the thread pool, never on the releasing thread.</summary>
public sealed class CommitWaitersTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Release_resumes_the_waiters_of_every_thread_and_a_waiter_that_comes_later()
    {
        var waiters = new CommitWaiters();
        // Waiters taken on many threads: the part is chosen by thread, so with more than one core they spread over several.
        var tasks = Enumerable.Range(0, 32).Select(_ => Task.Factory.StartNew(
            () => waiters.Task, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Result).ToList();
        Assert.All(tasks, task => Assert.False(task.IsCompleted));

        waiters.Release();

        await Task.WhenAll(tasks).WaitAsync(Timeout);
        await waiters.Task.WaitAsync(Timeout);
    }

    [Fact]
    public async Task Release_with_a_failure_throws_it_to_every_waiter()
    {
        var waiters = new CommitWaiters();
        var tasks = Enumerable.Range(0, 8).Select(_ => Task.Factory.StartNew(
            () => waiters.Task, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Result).ToList();
        var failure = new StorageFailureException("the disk is gone");

        waiters.Release(failure);

        foreach (var task in tasks)
        {
            var thrown = await Assert.ThrowsAsync<StorageFailureException>(() => task.WaitAsync(Timeout));
            Assert.Same(failure, thrown);
        }
    }

    [Fact]
    public async Task A_waiter_that_comes_after_the_release_is_released_too()
    {
        var waiters = new CommitWaiters();
        waiters.Release();
        await waiters.Task.WaitAsync(Timeout);

        var failed = new CommitWaiters();
        failed.Release(new StorageFailureException("the disk is gone"));
        await Assert.ThrowsAsync<StorageFailureException>(() => failed.Task.WaitAsync(Timeout));
    }

    [Fact]
    public async Task The_first_release_counts_and_a_later_one_changes_nothing()
    {
        var waiters = new CommitWaiters();
        var before = waiters.Task;

        waiters.Release();
        waiters.Release(new StorageFailureException("too late"));

        await before.WaitAsync(Timeout);
        await waiters.Task.WaitAsync(Timeout);

        var failed = new CommitWaiters();
        var failedBefore = failed.Task;
        failed.Release(new StorageFailureException("the disk is gone"));
        failed.Release();
        await Assert.ThrowsAsync<StorageFailureException>(() => failedBefore.WaitAsync(Timeout));
        await Assert.ThrowsAsync<StorageFailureException>(() => failed.Task.WaitAsync(Timeout));
    }

    [Fact]
    public async Task Release_returns_before_any_waiter_runs_so_a_commit_holding_locks_never_runs_requests()
    {
        var waiters = new CommitWaiters();
        using var released = new ManualResetEventSlim();
        // Resumes synchronously with whatever completes the part: it must be a work item, not Release's caller.
        var resumed = waiters.Task.ContinueWith(
            _ => released.Wait(Timeout),
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        waiters.Release();
        released.Set();

        Assert.True(await resumed.WaitAsync(Timeout), "the waiter ran inside Release, before it returned");
    }
}
