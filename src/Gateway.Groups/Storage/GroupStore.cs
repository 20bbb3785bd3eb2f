using Gateway.Storage;
using LiteDB;

namespace Gateway.Groups.Storage;

/// <summary>
/// Where the coordinator's state lasts: one LiteDB file with each group's membership (a document per group) and the
/// committed offsets (a document per group and partition). Membership is written and synced at once; offsets go
/// through <see cref="OffsetWriter"/>'s group commit. Not thread-safe: the coordinator calls it under its lock, so
/// the store sees changes in the order they happened in memory.
/// </summary>
internal sealed class GroupStore : IGroupPersistence
{
    private readonly LiteDatabase _database;
    private readonly StoreSync _sync;
    private readonly ILiteCollection<GroupRecord> _groups;
    private readonly ILiteCollection<OffsetRecord> _offsets;
    private readonly OffsetWriter _writer;

    /// <summary>Opens (or creates) the file.</summary>
    private GroupStore(string databasePath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(databasePath))!);
        _database = new LiteDatabase(new ConnectionString { Filename = databasePath, Connection = ConnectionType.Direct });
        _groups = _database.GetCollection<GroupRecord>("groups");
        _offsets = _database.GetCollection<OffsetRecord>("offsets");
        // By name and path: the expression overload translates a lambda and compiles a regex, a cost paid at every
        // start (figures: docs/storage.md).
        _offsets.EnsureIndex("Group", "$.Group");
        _sync = new StoreSync(databasePath);
        _sync.Opened();
        _writer = new OffsetWriter(_database, _offsets, _sync);
    }

    /// <summary>
    /// Opens the store and reads every group back; each generation is raised by one, so nothing granted before this
    /// start can commit after it. Committed offsets of topics that no longer exist (a deletion that did not reach the
    /// store) are removed: a topic created later under the name must not resume at them.
    /// </summary>
    public static GroupStore Open(string databasePath, DateTimeOffset now, Func<string, bool> topicExists, out Dictionary<string, Group> groups)
    {
        var store = new GroupStore(databasePath);
        try
        {
            groups = store.Load(now, topicExists);
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Whether an exception is the store failing (the caller logs it and goes on) rather than a bug.</summary>
    public static bool IsStoreFailure(Exception ex) => ex is LiteException or IOException;

    /// <summary>Writes the group's membership; durable when this returns (a power cut keeps generations from going back).</summary>
    public void Save(Group g)
    {
        _groups.Upsert(ToRecord(g));
        _sync.Committed();
    }

    /// <summary>Queues committed offsets; the task completes when they are durable.</summary>
    public Task SaveOffsets(string group, IReadOnlyDictionary<TopicPartition, long> offsets)
    {
        if (offsets.Count == 0)
        {
            return Task.CompletedTask;
        }
        var records = offsets.Select(o => new OffsetRecord
        {
            Id = OffsetRecord.KeyOf(group, o.Key),
            Group = group,
            Topic = o.Key.Topic,
            Partition = o.Key.Partition,
            Offset = o.Value,
        }).ToList();
        return _writer.Upsert(records);
    }

    /// <summary>Removes the group and its committed offsets.</summary>
    public Task Delete(string group)
    {
        _groups.Delete(group);
        return _writer.Apply(offsets => offsets.DeleteMany(o => o.Group == group));
    }

    /// <summary>Removes every group's committed offsets of a topic, after any commit of it queued before.</summary>
    public Task DeleteTopicOffsets(string topic) => _writer.Apply(offsets => offsets.DeleteMany(o => o.Topic == topic));

    /// <summary>Writes what is queued, then closes the file.</summary>
    public void Dispose()
    {
        _writer.Dispose();
        _database.Dispose();
    }

    private Dictionary<string, Group> Load(DateTimeOffset now, Func<string, bool> topicExists)
    {
        var groups = new Dictionary<string, Group>(StringComparer.Ordinal);
        foreach (var record in _groups.FindAll())
        {
            var g = new Group(record.Id) { Generation = record.Generation + 1 };
            foreach (var m in record.Members)
            {
                g.Members[m.Id] = new Member(m.Id)
                {
                    Owner = m.Owner,
                    Topics = new HashSet<string>(m.Topics, StringComparer.Ordinal),
                    SessionTimeoutMs = m.SessionTimeoutMs,
                    AutoOffsetReset = m.AutoOffsetReset,
                    // Leases are not persisted: a restart gives every member one session timeout to come back.
                    LeaseExpiresAt = now.AddMilliseconds(m.SessionTimeoutMs),
                    Target = [.. m.Target.Select(Parse)],
                    Owned = [.. m.Owned.Select(Parse)],
                };
            }
            groups[g.Name] = g;
        }
        var gone = new HashSet<string>(StringComparer.Ordinal);
        foreach (var offset in _offsets.FindAll())
        {
            if (!topicExists(offset.Topic))
            {
                gone.Add(offset.Topic);
                continue;
            }
            if (!groups.TryGetValue(offset.Group, out var g))
            {
                g = new Group(offset.Group);
                groups[g.Name] = g;
            }
            g.Committed[new TopicPartition(offset.Topic, offset.Partition)] = offset.Offset;
        }
        foreach (string topic in gone)
        {
            _offsets.DeleteMany(o => o.Topic == topic);
        }
        foreach (var g in groups.Values)
        {
            _groups.Upsert(ToRecord(g));
        }
        _sync.Committed();
        return groups;
    }

    private static GroupRecord ToRecord(Group g) => new()
    {
        Id = g.Name,
        Generation = g.Generation,
        Members = [.. g.Members.Values.Select(m => new MemberRecord
        {
            Id = m.Id,
            Owner = m.Owner,
            Topics = [.. m.Topics],
            SessionTimeoutMs = m.SessionTimeoutMs,
            AutoOffsetReset = m.AutoOffsetReset,
            Target = [.. m.Target.Select(Format)],
            Owned = [.. m.Owned.Select(Format)],
        })],
    };

    private static string Format(TopicPartition tp) => $"{tp.Partition}:{tp.Topic}";

    private static TopicPartition Parse(string text)
    {
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        return new TopicPartition(text[(colon + 1)..], int.Parse(text.AsSpan(0, colon), System.Globalization.CultureInfo.InvariantCulture));
    }
}
