using System.Text.Encodings.Web;
using System.Text.Json;
using Gateway.Storage;
using Gateway.Storage.Records;

namespace Gateway.Server.Records;

/// <summary>Writes stored records as the API shows them, straight from their bytes (no intermediate objects).</summary>
internal static class RecordJson
{
    public static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private static readonly JsonEncodedText Topic = JsonEncodedText.Encode("topic");
    private static readonly JsonEncodedText Partition = JsonEncodedText.Encode("partition");
    private static readonly JsonEncodedText Offset = JsonEncodedText.Encode("offset");
    private static readonly JsonEncodedText Timestamp = JsonEncodedText.Encode("timestamp");
    private static readonly JsonEncodedText Key = JsonEncodedText.Encode("key");
    private static readonly JsonEncodedText KeyBase64 = JsonEncodedText.Encode("keyBase64");
    private static readonly JsonEncodedText Value = JsonEncodedText.Encode("value");
    private static readonly JsonEncodedText ValueBase64 = JsonEncodedText.Encode("valueBase64");
    private static readonly JsonEncodedText Headers = JsonEncodedText.Encode("headers");

    public static void Write(Utf8JsonWriter writer, JsonEncodedText topic, int partition, LogRecord record)
    {
        writer.WriteStartObject();
        writer.WriteString(Topic, topic);
        writer.WriteNumber(Partition, partition);
        writer.WriteNumber(Offset, record.Offset);
        writer.WriteNumber(Timestamp, record.Timestamp);
        if (!record.KeyIsNull)
        {
            WritePayload(writer, Key, KeyBase64, record.KeyFormat, record.Key);
        }
        if (record.ValueIsNull)
        {
            writer.WriteNull(Value);
        }
        else
        {
            WritePayload(writer, Value, ValueBase64, record.ValueFormat, record.Value);
        }
        if (record.HeaderCount > 0)
        {
            writer.WriteStartObject(Headers);
            foreach (var header in record.Headers)
            {
                if (header.ValueIsNull)
                {
                    writer.WriteNull(header.Name);
                }
                else
                {
                    writer.WriteString(header.Name, header.Value);
                }
            }
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
    }

    private static void WritePayload(Utf8JsonWriter writer, JsonEncodedText name, JsonEncodedText base64Name, PayloadFormat format, ReadOnlySpan<byte> bytes)
    {
        switch (format)
        {
            case PayloadFormat.Text:
                writer.WriteString(name, bytes);
                break;
            case PayloadFormat.Json:
                writer.WritePropertyName(name);
                writer.WriteRawValue(bytes, skipInputValidation: true);
                break;
            default:
                writer.WriteBase64String(base64Name, bytes);
                break;
        }
    }
}
