using System.IO.Hashing;

namespace Gateway.Storage.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum Kafka's record batch v2 uses. System.IO.Hashing folds it with carry-less
/// multiplication where the CPU has it, so large batches are checked faster than with one serial chain of the CPU's
/// <c>crc32</c> instruction (what this used to be), each step of which waits for the one before
/// (figures: docs/storage.md).
/// </summary>
internal static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);
}
