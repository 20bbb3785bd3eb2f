using System.Text.Json;
using Gateway.Log.Device;

namespace Gateway.Log;

/// <summary>
/// What a partition keeps beside its FasterLog: the begin offset set by record deletion or retention, which may lie
/// inside a batch and must survive a restart even when the log below it has been truncated away.
/// </summary>
internal sealed record PartitionState(long BeginOffset)
{
    public const string FileName = "partition.json";

    public static PartitionState Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        return File.Exists(path)
            ? JsonSerializer.Deserialize(File.ReadAllBytes(path), LogJsonContext.Default.PartitionState) ?? new PartitionState(0)
            : new PartitionState(0);
    }

    public void Save(string directory) =>
        AtomicFile.Write(Path.Combine(directory, FileName), JsonSerializer.SerializeToUtf8Bytes(this, LogJsonContext.Default.PartitionState));
}
