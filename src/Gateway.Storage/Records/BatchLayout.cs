namespace Gateway.Storage.Records;

/// <summary>Byte positions of Kafka's record batch v2 header (big-endian), which every log entry starts with.</summary>
internal static class BatchLayout
{
    public const int BaseOffset = 0;
    public const int BatchLength = 8;
    public const int PartitionLeaderEpoch = 12;
    public const int Magic = 16;
    public const int Crc = 17;
    public const int Attributes = 21;
    public const int LastOffsetDelta = 23;
    public const int BaseTimestamp = 27;
    public const int MaxTimestamp = 35;
    public const int ProducerId = 43;
    public const int ProducerEpoch = 51;
    public const int BaseSequence = 53;
    public const int RecordsCount = 57;
    public const int HeaderSize = 61;

    /// <summary>The CRC covers everything from the attributes to the end, so offsets can be assigned without recomputing it.</summary>
    public const int CrcStart = Attributes;

    /// <summary>batchLength counts the bytes after the length field itself.</summary>
    public const int LengthFieldEnd = BatchLength + 4;

    public const byte CurrentMagic = 2;

    // The record attribute byte is unused by Kafka; Gateway keeps each payload's format in it.
    public const int KeyFormatShift = 0;
    public const int ValueFormatShift = 2;
    public const int FormatMask = 0b11;
}
