using System.Text;
using Gateway.Log.Device;
using Gateway.Storage;

namespace Gateway.Log.Tests;

/// <summary>One data directory, one store; a topic whose settings cannot be trusted is refused, never weakened.</summary>
public sealed class DataDirectoryTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_second_store_on_the_same_directory_is_refused_until_the_first_is_closed()
    {
        var first = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var topic = await first.CreateTopicAsync("t", 1);
        await LogFixture.AppendAsync(topic.GetPartition(0), Acks.Disk, "a", "b");

        var refused = await Assert.ThrowsAsync<DataDirectoryLockedException>(() => LogStore.OpenAsync(LogFixture.Options(_dir.Path)));
        Assert.Equal(Environment.ProcessId, refused.HolderProcessId);
        Assert.Contains(_dir.Path, refused.Message, StringComparison.Ordinal);
        Assert.Equal(2, first.GetTopic("t").GetPartition(0).EndOffset);

        await first.DisposeAsync();
        await using var second = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        Assert.Equal(2, second.GetTopic("t").GetPartition(0).EndOffset);
    }

    [Fact]
    public void The_lock_file_names_its_holder()
    {
        using (var held = DataDirectoryLock.Acquire(_dir.Path))
        {
            Assert.Equal(Environment.ProcessId, Assert.Throws<DataDirectoryLockedException>(() => DataDirectoryLock.Acquire(_dir.Path)).HolderProcessId);
        }
        // Read once released: .NET's own readers take a shared flock, which the holder's lock refuses.
        Assert.Equal($"{Environment.ProcessId}\n", File.ReadAllText(Path.Combine(_dir.Path, DataDirectoryLock.FileName), Encoding.ASCII));
        using var again = DataDirectoryLock.Acquire(_dir.Path);
    }

    [Theory]
    [InlineData("\"acks\": \"disk\"", "\"acks\": 7")]
    [InlineData("\"acks\": \"disk\"", "\"acks\": \"1\"")]
    [InlineData("\"acks\": \"disk\"", "\"acks\": \"Memory\"")]
    [InlineData("\"retentionMs\": -1", "\"retentionMs\": 0")]
    [InlineData("\"maxRecordBytes\": 1048576", "\"maxRecordBytes\": \"big\"")]
    public async Task A_topic_json_with_an_invalid_setting_refuses_that_topic_alone(string valid, string invalid)
    {
        await using (var store = await LogStore.OpenAsync(LogFixture.Options(_dir.Path)))
        {
            await LogFixture.AppendAsync((await store.CreateTopicAsync("bad", 1)).GetPartition(0), Acks.Disk, "kept");
            await LogFixture.AppendAsync((await store.CreateTopicAsync("good", 1)).GetPartition(0), Acks.Disk, "served");
        }
        string metadata = Path.Combine(_dir.Path, "topics", "bad", "topic.json");
        string text = await File.ReadAllTextAsync(metadata);
        Assert.Contains(valid, text, StringComparison.Ordinal);
        await File.WriteAllTextAsync(metadata, text.Replace(valid, invalid, StringComparison.Ordinal));

        await using var reopened = await LogStore.OpenAsync(LogFixture.Options(_dir.Path));
        var failure = Assert.Single(reopened.Failures);
        Assert.Equal(("bad", -1), (failure.Topic, failure.Partition));
        Assert.Contains("topic.json", failure.Reason, StringComparison.Ordinal);
        Assert.Throws<LogCorruptedException>(() => reopened.GetTopic("bad"));
        Assert.False(reopened.TryGetTopic("bad", out _));
        await Assert.ThrowsAsync<TopicExistsException>(() => reopened.CreateTopicAsync("bad", 1));
        Assert.True(File.Exists(metadata), "a refused topic's files are kept");
        Assert.Equal([(0L, "served")], LogFixture.ReadAll(reopened.GetTopic("good").GetPartition(0), 0));
    }

    [Fact]
    public void Config_validation_names_the_key()
    {
        Assert.Null(new TopicConfig { MaxRecordBytes = 1000 }.ValidationError(1000));
        Assert.Equal("acks", new TopicConfig { MaxRecordBytes = 1000, Acks = (Acks)7 }.ValidationError(1000)?.Key);
        Assert.Equal("retentionBytes", new TopicConfig { MaxRecordBytes = 1000, RetentionBytes = -2 }.ValidationError(1000)?.Key);
        Assert.Equal("maxRecordBytes", new TopicConfig { MaxRecordBytes = 1001 }.ValidationError(1000)?.Key);
    }
}
