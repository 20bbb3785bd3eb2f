using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Gateway.Server.Tests.Errors;

/// <summary>
/// Every field of every JSON request body and every query parameter of the OpenAPI document the server serves, sent
/// with wrongly typed or out-of-range values, one at a time: each answer is 4xx problem+json with a code and a detail
/// in the request's terms (no .NET type names), never 5xx, and nothing is appended. The cases are generated from the
/// document, so an operation or field added later is covered without touching this test.
/// </summary>
public sealed class ContractFuzzTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly GatewayFactory _factory = new();
    private HttpClient _client = null!;
    private string _memberId = null!;

    public async Task InitializeAsync()
    {
        _client = _factory.CreateClient();
        await Http.CreateTopicAsync(_client, "kept", 2);
        await Http.ProduceAsync(_client, "kept", """[{"key":"a","value":1},{"partition":1,"value":2}]""");
        var joined = await Http.PostProblemlessAsync(_client, "/v1/groups/g/members", """{"topics":["kept"]}""");
        _memberId = (string)joined["memberId"]!;
    }

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    /// <summary>What .NET would say and a user should never read.</summary>
    private static readonly string[] Internals = ["Nullable", "System.", "Gateway.", "Int32", "Int64", "Failed to bind", "Implicit body", "could not be converted", "LineNumber", "BytePosition"];

    [Fact]
    public async Task Wrongly_typed_values_for_every_field_and_parameter_are_4xx_problems()
    {
        var document = await Http.GetJsonAsync(_client, "/openapi/v1.json");
        var schemas = document["components"]!["schemas"]!;
        var cases = new List<(string Method, string Path, string? Body, string What)>();
        foreach (var (template, operations) in document["paths"]!.AsObject())
        {
            foreach (var (method, operation) in operations!.AsObject())
            {
                string path = FillPath(template);
                var parameters = operation!["parameters"]?.AsArray() ?? [];
                foreach (var parameter in parameters.Where(p => (string?)p!["in"] == "query"))
                {
                    string name = (string)parameter!["name"]!;
                    foreach (string value in WrongQueryValues(parameter["schema"]!))
                    {
                        cases.Add((method.ToUpperInvariant(), $"{path}?{name}={Uri.EscapeDataString(value)}", null, $"query {name}={value}"));
                    }
                }
                if (operation["requestBody"]?["content"]?["application/json"]?["schema"] is { } bodySchema)
                {
                    var valid = ValidBody(bodySchema, schemas, operation["requestBody"]!["content"]!["application/json"]!["example"]);
                    foreach (var (body, what) in Mutations(valid, bodySchema, schemas, ""))
                    {
                        cases.Add((method.ToUpperInvariant(), path, body, what));
                    }
                }
            }
        }
        Assert.True(cases.Count > 200, $"only {cases.Count} cases were generated from the document");

        string before = await SnapshotAsync();
        var failures = new List<string>();
        foreach (var (method, path, body, what) in cases)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            int status = (int)response.StatusCode;
            string text = status >= 400 ? await response.Content.ReadAsStringAsync(timeout.Token) : "";
            string? problem = Problem(status, response.Content.Headers.ContentType?.MediaType, text);
            if (problem is not null)
            {
                failures.Add($"{method} {path} [{what}] {body}: {problem}");
            }
        }
        output.WriteLine($"{cases.Count} requests, {failures.Count} failures");
        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(40)));
        Assert.Equal(before, await SnapshotAsync());
    }

    private static string? Problem(int status, string? mediaType, string text)
    {
        if (status is < 400 or >= 500)
        {
            return $"{status} (expected 4xx)";
        }
        if (mediaType != "application/problem+json")
        {
            return $"{status} as {mediaType}";
        }
        var node = JsonNode.Parse(text)!;
        if (string.IsNullOrEmpty((string?)node["code"]))
        {
            return $"{status} without a code: {text}";
        }
        if ((string?)node["code"] == "invalid_utf8")
        {
            return $"{status} invalid_utf8 for a value of the wrong type (every value sent is ASCII): {text}";
        }
        string detail = (string?)node["detail"] ?? "";
        return Internals.FirstOrDefault(i => detail.Contains(i, StringComparison.Ordinal)) is { } leak ? $"detail shows '{leak}': {detail}" : null;
    }

    private string FillPath(string template) => template
        .Replace("{topic}", "kept", StringComparison.Ordinal)
        .Replace("{partition}", "0", StringComparison.Ordinal)
        .Replace("{group}", "g", StringComparison.Ordinal)
        .Replace("{memberId}", _memberId, StringComparison.Ordinal);

    /// <summary>Values a parameter of this schema must refuse: the wrong type, and just outside its range.</summary>
    private static IEnumerable<string> WrongQueryValues(JsonNode schema)
    {
        string? type = TypeOf(schema);
        if (type == "integer")
        {
            yield return "abc";
            yield return "1.5";
            yield return "99999999999999999999";
            yield return "0x10";
            if (schema["minimum"] is { } min)
            {
                yield return ((long)min - 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            if (schema["maximum"] is { } max)
            {
                yield return ((long)max + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        else if (schema["enum"] is JsonArray || schema["pattern"] is not null)
        {
            yield return "not-one-of-them!";
        }
    }

    /// <summary>A valid body: the document's example where it gives one, else the required fields with plausible values.</summary>
    private static JsonNode ValidBody(JsonNode schema, JsonNode schemas, JsonNode? example)
    {
        if (example is not null)
        {
            return example.DeepClone();
        }
        var resolved = Resolve(schema, schemas);
        var body = new JsonObject();
        foreach (var required in resolved["required"]?.AsArray() ?? [])
        {
            string name = (string)required!;
            body[name] = name switch
            {
                "name" => "fuzzed",
                "topics" => new JsonArray("kept"),
                "topic" => "kept",
                "to" => "earliest",
                "generation" => 1,
                _ => SampleOf(Resolve(resolved["properties"]![name]!, schemas), schemas),
            };
        }
        return body;
    }

    private static JsonNode? SampleOf(JsonNode schema, JsonNode schemas) => TypeOf(schema) switch
    {
        "integer" => 1,
        "string" => "x",
        "array" => new JsonArray(),
        "object" => new JsonObject(),
        _ => schema["enum"]?[0]?.DeepClone(),
    };

    /// <summary>The body with one field (at any depth the schema describes) replaced by each wrong value for its type.</summary>
    private static IEnumerable<(string Body, string What)> Mutations(JsonNode valid, JsonNode schema, JsonNode schemas, string at)
    {
        var resolved = Resolve(schema, schemas);
        if (resolved["properties"] is not JsonObject properties || valid is not JsonObject obj)
        {
            yield break;
        }
        foreach (var (name, propertySchema) in properties)
        {
            var property = Resolve(propertySchema!, schemas);
            foreach (var wrong in WrongJsonValues(property, schemas))
            {
                var copy = (JsonObject)obj.DeepClone();
                copy[name] = wrong?.DeepClone();
                yield return (copy.ToJsonString(), $"{at}{name}={wrong?.ToJsonString() ?? "null"}");
            }
            // Deeper: the field's own object, or the first item of its array, when the valid body has one.
            if (obj[name] is JsonObject inner)
            {
                foreach (var (body, what) in Mutations(inner, property, schemas, $"{at}{name}."))
                {
                    var copy = (JsonObject)obj.DeepClone();
                    copy[name] = JsonNode.Parse(body);
                    yield return (copy.ToJsonString(), what);
                }
            }
            if (obj[name] is JsonArray { Count: > 0 } items && property["items"] is { } itemSchema)
            {
                foreach (var (body, what) in Mutations(items[0]!, itemSchema, schemas, $"{at}{name}[0]."))
                {
                    var copy = (JsonObject)obj.DeepClone();
                    copy[name]![0] = JsonNode.Parse(body);
                    yield return (copy.ToJsonString(), what);
                }
                foreach (var wrongItem in WrongJsonValues(Resolve(itemSchema, schemas), schemas))
                {
                    var copy = (JsonObject)obj.DeepClone();
                    copy[name]![0] = wrongItem?.DeepClone();
                    yield return (copy.ToJsonString(), $"{at}{name}[0]={wrongItem?.ToJsonString() ?? "null"}");
                }
            }
        }
        foreach (var extra in new[] { "unknownField" })
        {
            var copy = (JsonObject)obj.DeepClone();
            copy[extra] = 1;
            yield return (copy.ToJsonString(), $"{at}{extra}");
        }
    }

    /// <summary>JSON values of the wrong type (or range) for a schema; none for a field that takes any JSON value.</summary>
    private static IEnumerable<JsonNode?> WrongJsonValues(JsonNode schema, JsonNode schemas)
    {
        string? type = TypeOf(schema);
        JsonNode?[] all = [JsonValue.Create("5"), JsonValue.Create(1.5), JsonValue.Create(true), new JsonObject(), new JsonArray(), JsonValue.Create(5)];
        IEnumerable<JsonNode?> wrong = type switch
        {
            "integer" => all.Where(v => v is not JsonValue value || value.ToJsonString() is not "5").Append(JsonNode.Parse("99999999999999999999")),
            "string" => all.Where(v => v is not JsonValue value || !value.ToJsonString().StartsWith('"')),
            "array" => all.Where(v => v is not JsonArray),
            "object" => all.Where(v => v is not JsonObject),
            "boolean" => all.Where(v => v is not JsonValue value || value.ToJsonString() is not "true"),
            _ when schema["enum"] is JsonArray => [JsonValue.Create("not-one-of-them"), JsonValue.Create(1), new JsonObject()],
            _ => [],
        };
        if (type == "integer" && schema["minimum"] is { } min)
        {
            wrong = wrong.Append(JsonValue.Create((long)min - 1));
        }
        return wrong;
    }

    /// <summary>The schema behind a $ref, or the non-null branch of a nullable oneOf.</summary>
    private static JsonNode Resolve(JsonNode schema, JsonNode schemas)
    {
        if (schema["$ref"] is { } reference)
        {
            return Resolve(schemas[((string)reference!).Split('/')[^1]]!, schemas);
        }
        if (schema["oneOf"] is JsonArray branches && branches.Where(b => TypeOf(b!) != "null").ToList() is [var only])
        {
            return Resolve(only!, schemas);
        }
        return schema;
    }

    private static string? TypeOf(JsonNode schema) => schema["type"] switch
    {
        JsonValue single => (string?)single,
        JsonArray several => several.Select(t => (string?)t).FirstOrDefault(t => t != "null") ?? "null",
        _ => null,
    };

    private async Task<string> SnapshotAsync()
    {
        var text = new StringBuilder(Http.Raw(await Http.GetJsonAsync(_client, "/v1/topics")));
        for (int partition = 0; partition < 2; partition++)
        {
            text.Append(Http.Raw(await Http.GetJsonAsync(_client, $"/v1/topics/kept/partitions/{partition}/records?offset=0")));
        }
        return text.ToString();
    }
}
