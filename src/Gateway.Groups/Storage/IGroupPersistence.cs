using Gateway.Storage;

namespace Gateway.Groups.Storage;

/// <summary>Where the coordinator's changes last; called under its lock, in the order the changes happened.</summary>
internal interface IGroupPersistence : IDisposable
{
    /// <summary>Writes the group's membership.</summary>
    void Save(Group g);

    /// <summary>Writes committed offsets; the task completes when they last.</summary>
    Task SaveOffsets(string group, IReadOnlyDictionary<TopicPartition, long> offsets);

    /// <summary>Removes the group and its committed offsets.</summary>
    Task Delete(string group);

    /// <summary>Removes every group's committed offsets of a topic.</summary>
    Task DeleteTopicOffsets(string topic);
}

/// <summary>A replica's: the command log the replica was built from is where its state lasts, so nothing is written here.</summary>
internal sealed class ReplicatedPersistence : IGroupPersistence
{
    public void Save(Group g)
    {
    }

    public Task SaveOffsets(string group, IReadOnlyDictionary<TopicPartition, long> offsets) => Task.CompletedTask;

    public Task Delete(string group) => Task.CompletedTask;

    public Task DeleteTopicOffsets(string topic) => Task.CompletedTask;

    public void Dispose()
    {
    }
}
