using System.Text;
using System.Text.Json;
using Gateway.Server.Errors;
using Gateway.Server.Records;
using Gateway.Storage;

namespace Gateway.Server.Tests.Records;

/// <summary>The JSON record parser of produce on its own: what each field becomes, and what it refuses.</summary>
public sealed class RecordJsonParserTests
{
    [Fact]
    public void A_string_value_is_text_and_an_object_or_number_is_json_kept_as_written()
    {
        var records = Parse("""{"records":[{"value":"héllo"},{"value":{"a": [1, 2]}},{"value":42},{"value":true}]}""");

        Assert.Equal(4, records.Count);
        Assert.Equal(("héllo", PayloadFormat.Text), records[0].Value);
        Assert.Equal(("{\"a\": [1, 2]}", PayloadFormat.Json), records[1].Value);
        Assert.Equal(("42", PayloadFormat.Json), records[2].Value);
        Assert.Equal(("true", PayloadFormat.Json), records[3].Value);
    }

    [Fact]
    public void Escapes_in_a_string_value_are_decoded_and_in_a_json_value_kept()
    {
        var records = Parse("""{"records":[{"value":"a\"b\u00e9"},{"value":{"k":"\u00e9"}}]}""");

        Assert.Equal(("a\"bé", PayloadFormat.Text), records[0].Value);
        Assert.Equal(("""{"k":"\u00e9"}""", PayloadFormat.Json), records[1].Value);
    }

    [Fact]
    public void Base64_fields_are_binary_and_a_missing_or_null_field_is_no_payload()
    {
        var records = Parse("""{"records":[{"keyBase64":"AAEC/w==","valueBase64":""},{"key":null},{}]}""");

        Assert.Equal([0, 1, 2, 255], records[0].KeyBytes);
        Assert.Equal(PayloadFormat.Binary, records[0].Key!.Value.Format);
        Assert.Equal(("", PayloadFormat.Binary), records[0].Value);
        Assert.Null(records[1].Key);
        Assert.Null(records[1].Value);
        Assert.Null(records[2].Value);
    }

    [Fact]
    public void Headers_partition_and_timestamp_are_taken_as_given()
    {
        var records = Parse("""{"records":[{"value":"v","headers":{"trace":"abc","empty":"","gone":null},"partition":3,"timestamp":1700000000000}]}""");

        var record = Assert.Single(records);
        Assert.Equal(3, record.Partition);
        Assert.Equal(1_700_000_000_000, record.Timestamp);
        Assert.Equal(["trace", "empty", "gone"], record.Headers!.Select(h => h.Name));
        Assert.Equal("abc"u8.ToArray(), record.Headers![0].Value);
        Assert.Empty(record.Headers![1].Value!);
        Assert.Null(record.Headers![2].Value);
    }

    [Theory]
    [InlineData("""{"records":[{"value":"a","value":"b"}]}""", "invalid_json")]
    [InlineData("""{"records":[{"value":"a","valueBase64":"YQ=="}]}""", "invalid_record")]
    [InlineData("""{"records":[{"value":"a","headers":{"h":"1","h":"2"}}]}""", "invalid_json")]
    [InlineData("""{"records":[],"records":[]}""", "invalid_json")]
    [InlineData("""{"records":[{"valu":"a"}]}""", "invalid_record")]
    [InlineData("""{"records":[1]}""", "invalid_record")]
    [InlineData("""{"record":[]}""", "invalid_request")]
    [InlineData("""{}""", "invalid_request")]
    [InlineData("""[]""", "invalid_request")]
    [InlineData("""{"records":{}}""", "invalid_request")]
    [InlineData("""{"records":[{"valueBase64":"***"}]}""", "invalid_base64")]
    [InlineData("""{"records":[{"keyBase64":1}]}""", "invalid_base64")]
    [InlineData("""{"records":[{"headers":[]}]}""", "invalid_headers")]
    [InlineData("""{"records":[{"headers":{"h":1}}]}""", "invalid_headers")]
    [InlineData("""{"records":[{"partition":-1}]}""", "invalid_partition")]
    [InlineData("""{"records":[{"partition":"1"}]}""", "invalid_partition")]
    [InlineData("""{"records":[{"timestamp":1.5}]}""", "invalid_timestamp")]
    [InlineData("""{"records":[{"value":"\ud800"}]}""", "invalid_utf8")]
    [InlineData("""{"records":[{"value":{"k":"\udc00"}}]}""", "invalid_utf8")]
    [InlineData("""{"records":[{"headers":{"\ud800":"v"}}]}""", "invalid_utf8")]
    [InlineData("""{"records":[{"value":"a"}]} x""", "invalid_json")]
    [InlineData("""{"records":[{"value":"a"}""", "invalid_json")]
    public void A_wrong_body_is_refused_with_its_code(string body, string code)
    {
        var sink = new ListSink();

        var error = Assert.Throws<ApiException>(() => RecordJsonParser.ParseEnvelope(Encoding.UTF8.GetBytes(body), sink));

        Assert.Equal(400, error.Status);
        Assert.Equal(code, error.Code);
        Assert.DoesNotContain("System.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Errors_name_the_record_they_are_in()
    {
        var error = Assert.Throws<ApiException>(() => Parse("""{"records":[{"value":"ok"},{"value":"ok"},{"partition":"x"}]}"""));

        Assert.StartsWith("records[2]:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_bytes_in_a_string_are_refused()
    {
        byte[] body = [.. "{\"records\":[{\"value\":\""u8, 0xC3, 0x28, .. "\"}]}"u8];

        var error = Assert.Throws<ApiException>(() => RecordJsonParser.ParseEnvelope(body, new ListSink()));

        Assert.Equal("invalid_utf8", error.Code);
    }

    [Fact]
    public void One_record_object_parses_alone_as_an_ndjson_line_does()
    {
        byte[] line = """{"key":"k","value":[1,2]}"""u8.ToArray();
        var reader = new Utf8JsonReader(line);
        reader.Read();
        var sink = new ListSink();

        RecordJsonParser.ParseRecord(ref reader, line, sink);

        var record = Assert.Single(sink.Records);
        Assert.Equal(("k", PayloadFormat.Text), record.KeyText);
        Assert.Equal(("[1,2]", PayloadFormat.Json), record.Value);
        Assert.Equal(JsonTokenType.EndObject, reader.TokenType);
    }

    private static List<Parsed> Parse(string body)
    {
        var sink = new ListSink();
        RecordJsonParser.ParseEnvelope(Encoding.UTF8.GetBytes(body), sink);
        return sink.Records;
    }

    private sealed record Parsed(int? Partition, long? Timestamp, (byte[] Bytes, PayloadFormat Format)? Key, (string, PayloadFormat)? Value, IReadOnlyList<RecordHeader>? Headers)
    {
        public byte[]? KeyBytes => Key?.Bytes;

        public (string, PayloadFormat)? KeyText => Key is { } k ? (Encoding.UTF8.GetString(k.Bytes), k.Format) : null;
    }

    /// <summary>Keeps what the parser adds, copied (the payloads point into the parsed body).</summary>
    private sealed class ListSink : IRecordSink
    {
        public List<Parsed> Records { get; } = [];

        public int Count => Records.Count;

        public void Add(int? partition, long? timestamp, Payload key, Payload value, IReadOnlyList<RecordHeader>? headers) =>
            Records.Add(new Parsed(
                partition,
                timestamp,
                key.IsNull ? null : (key.Bytes.ToArray(), key.Format),
                value.IsNull ? null : (Encoding.UTF8.GetString(value.Bytes), value.Format),
                headers));
    }
}
