using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Gateway.Server.Errors;
using Gateway.Storage;

namespace Gateway.Server.Records;

/// <summary>
/// The JSON record parser of produce: a record object (<c>key</c>, <c>value</c>, <c>keyBase64</c>/<c>valueBase64</c>,
/// <c>headers</c>, <c>partition</c>, <c>timestamp</c>) or an envelope of them, checked field by field (duplicates, types,
/// base64, lone surrogates) and added to an <see cref="IRecordSink"/> (the request's <see cref="ProduceBatches"/>).
/// <see cref="ProduceBodyReader"/> frames the body (whole, per NDJSON line, or one raw record) and calls it.
/// </summary>
internal static class RecordJsonParser
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    public static void ParseEnvelope(ReadOnlySpan<byte> json, IRecordSink batches)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw ApiException.BadRequest("invalid_request", "The body is a JSON object: {\"records\":[...]}.");
            }
            bool sawRecords = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (!reader.ValueTextEquals("records"u8))
                {
                    throw ApiException.BadRequest("invalid_request", $"Unknown field '{NameOf(ref reader, -1)}'; the body is {{\"records\":[...]}}.");
                }
                if (sawRecords)
                {
                    throw ApiException.BadRequest("invalid_json", "'records' appears twice in the body.");
                }
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                {
                    throw ApiException.BadRequest("invalid_request", "\"records\" is an array of record objects.");
                }
                sawRecords = true;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        throw ApiException.BadRequest("invalid_record", $"records[{batches.Count}] is not a JSON object.");
                    }
                    ParseRecord(ref reader, json, batches);
                }
            }
            if (!sawRecords)
            {
                throw ApiException.BadRequest("invalid_request", "The body is {\"records\":[...]}; \"records\" is missing.");
            }
            if (reader.Read())
            {
                throw ApiException.BadRequest("invalid_json", "Unexpected data after the JSON object.");
            }
        }
        catch (JsonException ex)
        {
            throw ApiException.BadRequest("invalid_json", ex.Message);
        }
    }

    /// <summary>Parses one record object; the reader stands on its StartObject and ends on its EndObject.</summary>
    public static void ParseRecord(ref Utf8JsonReader reader, ReadOnlySpan<byte> source, IRecordSink batches)
    {
        int index = batches.Count;
        var key = Payload.Null;
        var value = Payload.Null;
        bool hasKey = false, hasValue = false;
        int? partition = null;
        long? timestamp = null;
        List<RecordHeader>? headers = null;
        int seen = 0;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            int field = FieldBit(ref reader);
            if ((seen & field) != 0)
            {
                throw ApiException.BadRequest("invalid_json", $"records[{index}]: '{NameOf(ref reader, index)}' appears twice in one record.");
            }
            seen |= field;
            // Each name compared once (FieldBit), then dispatched on.
            if (field is KeyField or ValueField)
            {
                bool isKey = field == KeyField;
                reader.Read();
                if (reader.TokenType == JsonTokenType.Null)
                {
                    continue; // an explicit null is the same as leaving the field out
                }
                CheckOnce(ref isKey ? ref hasKey : ref hasValue, isKey ? "key" : "value", index);
                var payload = ReadJsonPayload(ref reader, source, index);
                if (isKey)
                {
                    key = payload;
                }
                else
                {
                    value = payload;
                }
            }
            else if (field is KeyBase64Field or ValueBase64Field)
            {
                bool isKey = field == KeyBase64Field;
                reader.Read();
                if (reader.TokenType == JsonTokenType.Null)
                {
                    continue;
                }
                CheckOnce(ref isKey ? ref hasKey : ref hasValue, isKey ? "key" : "value", index);
                var payload = new Payload(ReadBase64(ref reader, index), PayloadFormat.Binary);
                if (isKey)
                {
                    key = payload;
                }
                else
                {
                    value = payload;
                }
            }
            else if (field == HeadersField)
            {
                reader.Read();
                headers = ReadHeaders(ref reader, index);
            }
            else if (field == PartitionField)
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.Null)
                {
                    continue;
                }
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out int p) || p < 0)
                {
                    throw ApiException.BadRequest("invalid_partition", $"records[{index}]: partition is a non-negative integer.");
                }
                partition = p;
            }
            else if (field == TimestampField)
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.Null)
                {
                    continue;
                }
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long t) || t < 0)
                {
                    throw ApiException.BadRequest("invalid_timestamp", $"records[{index}]: timestamp is a non-negative integer (epoch milliseconds).");
                }
                timestamp = t;
            }
            else
            {
                throw ApiException.BadRequest("invalid_record", $"records[{index}]: unknown field '{NameOf(ref reader, index)}'. Fields: key, keyBase64, value, valueBase64, headers, partition, timestamp.");
            }
        }
        batches.Add(partition, timestamp, key, value, headers);
    }

    private const int KeyField = 1, ValueField = 2, KeyBase64Field = 4, ValueBase64Field = 8, HeadersField = 16, PartitionField = 32, TimestampField = 64;

    /// <summary>A bit for each field a record object may have (0 for any other name): what to parse, and whether it came twice.</summary>
    private static int FieldBit(scoped ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("key"u8) ? KeyField
        : reader.ValueTextEquals("value"u8) ? ValueField
        : reader.ValueTextEquals("keyBase64"u8) ? KeyBase64Field
        : reader.ValueTextEquals("valueBase64"u8) ? ValueBase64Field
        : reader.ValueTextEquals("headers"u8) ? HeadersField
        : reader.ValueTextEquals("partition"u8) ? PartitionField
        : reader.ValueTextEquals("timestamp"u8) ? TimestampField
        : 0;

    private static void CheckOnce(ref bool seen, string what, int index)
    {
        if (seen)
        {
            throw ApiException.BadRequest("invalid_record", $"records[{index}]: give the {what} once, as {what} or {what}Base64.");
        }
        seen = true;
    }

    /// <summary>A JSON string is text (its unescaped UTF-8); null is null; anything else is kept as its JSON text.</summary>
    private static Payload ReadJsonPayload(scoped ref Utf8JsonReader reader, ReadOnlySpan<byte> source, int index)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return Payload.Null;
            case JsonTokenType.String:
                return new Payload(ReadUtf8String(ref reader, index), PayloadFormat.Text);
            case JsonTokenType.StartObject or JsonTokenType.StartArray:
                int start = (int)reader.TokenStartIndex;
                SkipCheckingEscapes(ref reader, index);
                var raw = source[start..(int)reader.BytesConsumed];
                if (!Utf8.IsValid(raw))
                {
                    throw ApiException.BadRequest("invalid_utf8", $"records[{index}]: the JSON holds invalid UTF-8.");
                }
                return new Payload(raw, PayloadFormat.Json);
            default:
                return new Payload(source.Slice((int)reader.TokenStartIndex, reader.ValueSpan.Length), PayloadFormat.Json);
        }
    }

    /// <summary>
    /// Skips a JSON object or array kept as its text, checking that every escaped string in it (names included) stands
    /// for valid UTF-8: an escaped lone surrogate (<c>"\ud800"</c>) is no character, and other readers would refuse
    /// the record or change it.
    /// </summary>
    private static void SkipCheckingEscapes(scoped ref Utf8JsonReader reader, int index)
    {
        int depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
            {
                _ = Unescape(ref reader, index);
            }
        }
    }

    /// <summary>A string's unescaped UTF-8; an escape that stands for no character (a lone surrogate) is 400 <c>invalid_utf8</c>.</summary>
    private static ReadOnlySpan<byte> Unescape(scoped ref Utf8JsonReader reader, int index)
    {
        byte[] unescaped = new byte[reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length];
        try
        {
            return unescaped.AsSpan(0, reader.CopyString(unescaped));
        }
        catch (InvalidOperationException)
        {
            throw ApiException.BadRequest("invalid_utf8", $"{(index < 0 ? "The body" : $"records[{index}]")}: a string holds an escape that is no character (a lone surrogate such as \\ud800).");
        }
    }

    /// <summary>A property name as text; one whose escapes are no character is 400 <c>invalid_utf8</c>.</summary>
    private static string NameOf(scoped ref Utf8JsonReader reader, int index)
    {
        if (reader.ValueIsEscaped)
        {
            return Encoding.UTF8.GetString(Unescape(ref reader, index));
        }
        if (!Utf8.IsValid(reader.ValueSpan))
        {
            throw ApiException.BadRequest("invalid_utf8", $"records[{index}]: a field name is not valid UTF-8.");
        }
        return reader.GetString()!;
    }

    private static ReadOnlySpan<byte> ReadUtf8String(scoped ref Utf8JsonReader reader, int index)
    {
        ReadOnlySpan<byte> bytes;
        if (reader.ValueIsEscaped)
        {
            bytes = Unescape(ref reader, index);
        }
        else
        {
            bytes = reader.ValueSpan;
        }
        if (!Utf8.IsValid(bytes))
        {
            throw ApiException.BadRequest("invalid_utf8", $"records[{index}]: a string is not valid UTF-8.");
        }
        return bytes;
    }

    private static byte[] ReadBase64(scoped ref Utf8JsonReader reader, int index)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw ApiException.BadRequest("invalid_base64", $"records[{index}]: keyBase64 and valueBase64 are base64 strings.");
        }
        var encoded = reader.ValueIsEscaped ? ReadUtf8String(ref reader, index) : reader.ValueSpan;
        byte[] decoded = new byte[Base64.GetMaxDecodedFromUtf8Length(encoded.Length)];
        if (Base64.DecodeFromUtf8(encoded, decoded, out _, out int written) != OperationStatus.Done)
        {
            throw ApiException.BadRequest("invalid_base64", $"records[{index}]: not valid base64.");
        }
        return decoded.AsSpan(0, written).ToArray();
    }

    private static List<RecordHeader>? ReadHeaders(ref Utf8JsonReader reader, int index)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw ApiException.BadRequest("invalid_headers", $"records[{index}]: headers is an object of string values.");
        }
        var headers = new List<RecordHeader>();
        HashSet<string>? names = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string name = NameOf(ref reader, index);
            // A list scan while there are few (the usual case), a set once there are many: never quadratic.
            bool repeated = headers.Count < 8 ? headers.Exists(h => h.Name == name) : !(names ??= new HashSet<string>(headers.Select(h => h.Name), StringComparer.Ordinal)).Add(name);
            if (repeated)
            {
                throw ApiException.BadRequest("invalid_json", $"records[{index}]: header '{name}' appears twice in one headers object.");
            }
            reader.Read();
            byte[]? value = reader.TokenType switch
            {
                JsonTokenType.Null => null,
                JsonTokenType.String => ReadUtf8String(ref reader, index).ToArray(),
                _ => throw ApiException.BadRequest("invalid_headers", $"records[{index}]: header '{name}' is a string or null."),
            };
            headers.Add(new RecordHeader(name, value));
        }
        return headers;
    }

    public static void ValidateJson(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        try
        {
            if (!reader.Read())
            {
                throw ApiException.BadRequest("invalid_json", "The body is empty, not JSON.");
            }
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                SkipCheckingEscapes(ref reader, 0);
            }
            else if (reader.TokenType == JsonTokenType.String && reader.ValueIsEscaped)
            {
                _ = Unescape(ref reader, 0);
            }
            if (reader.Read())
            {
                throw ApiException.BadRequest("invalid_json", "The body holds more than one JSON value.");
            }
        }
        catch (JsonException ex)
        {
            throw ApiException.BadRequest("invalid_json", ex.Message);
        }
    }
}
