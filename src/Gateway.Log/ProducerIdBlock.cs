using System.Buffers.Binary;
using Gateway.Log.Device;
using Gateway.Storage;

namespace Gateway.Log;

/// <summary>
/// Hands out Kafka producer ids that are never handed out twice, not even across a crash: ids come from blocks, and
/// a block's end is made durable in <c>{DataDirectory}/producer-ids</c> (temp file, fsync, rename) before its first
/// id is given. A crash forgets at most the rest of a block. Thread-safe.
/// </summary>
internal sealed class ProducerIdBlock(string dataDirectory)
{
    public const string FileName = "producer-ids";
    private const long BlockSize = 1000;

    private readonly Lock _lock = new();
    private readonly string _path = Path.Combine(dataDirectory, FileName);
    private long _next = -1;
    private long _end = -1;

    /// <summary>The next id; once per block it waits for the block's end to reach the disk.</summary>
    public long Next()
    {
        lock (_lock)
        {
            if (_next < 0)
            {
                _next = _end = ReadPersistedEnd();
            }
            if (_next >= _end)
            {
                long end = _next + BlockSize;
                if (end >= ProducerBatch.ProducerIdLimit)
                {
                    throw new StorageFailureException("Every Kafka producer id has been handed out.");
                }
                byte[] bytes = new byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(bytes, end);
                try
                {
                    AtomicFile.Write(_path, bytes);
                }
                catch (IOException ex)
                {
                    throw new StorageFailureException($"The producer id block could not be saved: {ex.Message}", ex);
                }
                _end = end;
            }
            return _next++;
        }
    }

    private long ReadPersistedEnd()
    {
        try
        {
            byte[] bytes = File.ReadAllBytes(_path);
            long end = bytes.Length == 8 ? BinaryPrimitives.ReadInt64LittleEndian(bytes) : -1;
            if (end is < 0 or >= ProducerBatch.ProducerIdLimit)
            {
                throw new LogCorruptedException($"{_path} is damaged ({bytes.Length} bytes); ids handed out before cannot be known.");
            }
            return end;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }
}
