using System.Globalization;
using System.Text.Json.Nodes;
using Gateway.Storage;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace Gateway.Server.Hosting;

/// <summary>
/// Completes the generated OpenAPI document with what the endpoint signatures cannot say: parameter descriptions and
/// constraints (from the server's own limits), the headers the endpoints read and write, the problem+json <c>code</c>,
/// the SSE and NDJSON media types, and an example for every request body and response.
/// </summary>
internal sealed class OpenApiContract(IOptions<ApiLimits> limits, IOptions<GroupOptions> groups) : IOpenApiDocumentTransformer
{
    private const string NamePattern = "^[a-zA-Z0-9._-]{1,249}$";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info.Title = "Gateway";
        document.Info.Version = "v1";
        document.Info.Description =
            "Kafka's model - topics, partitions, offsets, consumer groups, retention - over plain HTTP. Errors are RFC 9457 " +
            "problem+json with a stable `code`. Offsets are dense per partition; timestamps are epoch milliseconds.";
        // The document must not depend on the host that asked for it (it is committed and drift-checked): the server of
        // the README's quick start, which generated clients take as their default base address.
        document.Servers = [new OpenApiServer { Url = "http://localhost:8080", Description = "A server started with `dotnet run --project src/Gateway.Server` (README quick start)." }];
        DescribeTags(document);
        DescribeSecurity(document);
        if (document.Components?.Schemas?.TryGetValue("ProblemDetails", out var problem) == true && problem is OpenApiSchema problemSchema)
        {
            DescribeProblem(problemSchema);
        }
        // A JsonElement is any JSON value: inline `{}` rather than a named object, so generators map it to their "any" type.
        document.Components?.Schemas?.Remove("JsonElement");
        foreach (var (name, schema) in document.Components?.Schemas ?? new Dictionary<string, IOpenApiSchema>())
        {
            if (schema is OpenApiSchema owner && owner.Properties is { } members)
            {
                foreach (var (member, memberSchema) in members.ToList())
                {
                    if (RefersTo(memberSchema, "JsonElement"))
                    {
                        members[member] = new OpenApiSchema { Description = "Any JSON value." };
                    }
                }
            }
        }
        foreach (var (name, schema) in (document.Components?.Schemas ?? new Dictionary<string, IOpenApiSchema>()).ToList())
        {
            if (InputSchemas.Contains(name) && schema is OpenApiSchema input && input.Properties is { } properties)
            {
                // Request bodies: a nullable property may be left out; the generator marks every constructor parameter required.
                input.Required = new HashSet<string>(properties.Where(p => !IsNullable(p.Value) || AlwaysRequired.Contains((name, p.Key))).Select(p => p.Key));
                foreach (string member in input.Required.Where(m => AlwaysRequired.Contains((name, m))))
                {
                    // Required by the server, so never null: a generated client then types it as plain string or array.
                    if (properties[member] is OpenApiSchema { Type: { } type } nonNull && type.HasFlag(JsonSchemaType.Null))
                    {
                        nonNull.Type = type & ~JsonSchemaType.Null;
                    }
                }
                if (name == "ResetOffsetsRequest")
                {
                    properties["to"] = ResetTarget(document);
                }
            }
            if (OmittedWhenAbsent.TryGetValue(name, out string[]? omitted) && schema is OpenApiSchema output && output.Required is { } required)
            {
                // Written by hand, not by the serializer: these members are left out rather than sent as null.
                required.ExceptWith(omitted);
            }
        }
        foreach (var (path, item) in document.Paths)
        {
            foreach (var (method, operation) in item.Operations ?? [])
            {
                DescribeParameters(operation, path);
                DescribeBodies(operation);
                DescribeResponses(operation);
            }
        }
        return Task.CompletedTask;
    }

    private static void DescribeTags(OpenApiDocument document)
    {
        var descriptions = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Topics"] = "Create, list, describe, change and delete topics; partition offsets and record deletion.",
            ["Records"] = "Produce records (JSON, NDJSON or a raw body) and fetch them by offset, with long-poll.",
            ["Groups"] = "Consumer groups: members share a topic's partitions, fetch from their position and commit offsets.",
            ["Streaming"] = "Server-Sent Events: a topic's records, or a group member's share, as they are committed.",
        };
        foreach (var tag in document.Tags ?? new HashSet<OpenApiTag>())
        {
            if (tag.Name is { } name && descriptions.TryGetValue(name, out string? description))
            {
                tag.Description = description;
            }
        }
    }

    /// <summary>
    /// How a client authenticates, where the server is configured with credentials (Security in README): a bearer
    /// token, API key or JWT; event streams also take it as <c>?access_token=</c>, since browsers' EventSource cannot set
    /// headers. Without configured credentials a loopback server answers anonymous requests, hence the empty
    /// alternative: generated clients get an auth setting that may be left unset.
    /// </summary>
    private static void DescribeSecurity(OpenApiDocument document)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal)
        {
            ["bearer"] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                BearerFormat = "API key or JWT",
                Description = "`Authorization: Bearer <API key or JWT>`, as configured under `Auth` (README, Security).",
            },
            ["accessToken"] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Query,
                Name = "access_token",
                Description = "The same API key or JWT in the query, for event streams opened by browsers' EventSource.",
            },
        };
        foreach (var (_, item) in document.Paths)
        {
            foreach (var (_, operation) in item.Operations ?? [])
            {
                operation.Security =
                [
                    new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] },
                    .. operation.OperationId is "StreamTopic" or "StreamGroup"
                        ? new[] { new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("accessToken", document)] = [] } }
                        : [],
                    new OpenApiSecurityRequirement(),
                ];
            }
        }
    }

    /// <summary>
    /// One problem schema for every error: the RFC 9457 members, <c>code</c>, <c>traceId</c>, and the extension members
    /// some codes carry, typed, so that a generated client reads them without casts.
    /// </summary>
    private static void DescribeProblem(OpenApiSchema problem)
    {
        problem.Description = "RFC 9457 problem details. `code` is stable and meant for programs; `title` and `detail` are for people. " +
            "Some codes carry more members, listed here with the codes that set them.";
        problem.Properties ??= new Dictionary<string, IOpenApiSchema>();
        problem.Properties["code"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "Stable machine-readable error code, e.g. `topic_not_found` (README lists them all)." };
        problem.Properties["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The request's trace id, as the server's request log names it." };
        static OpenApiSchema Int64(string description) => new() { Type = JsonSchemaType.Integer, Format = "int64", Description = description };
        problem.Properties["generation"] = Int64("`stale_generation`: the generation the request gave.");
        problem.Properties["currentGeneration"] = Int64("`stale_generation`: the group's current generation.");
        problem.Properties["partitions"] = new OpenApiSchema
        {
            Type = JsonSchemaType.Array,
            Items = new OpenApiSchemaReference("PartitionRef"),
            Description = "`partition_not_assigned`: the partitions the member does not hold.",
        };
        problem.Properties["partitionCount"] = Int64("`partition_not_found`: how many partitions the topic has.");
        problem.Properties["expectedOffset"] = Int64("`offset_mismatch`: the end offset the request expected.");
        problem.Properties["offset"] = Int64("`offset_out_of_range`: the offset asked for.");
        problem.Properties["beginOffset"] = Int64("`offset_out_of_range`: the partition's begin offset.");
        problem.Properties["endOffset"] = Int64("`offset_out_of_range`, `offset_mismatch`: the partition's end offset.");
        problem.Properties["key"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "`invalid_config`: the topic setting refused." };
        problem.Properties["sizeBytes"] = Int64("`batch_too_large`: the batch's size.");
        problem.Properties["maxBatchBytes"] = Int64("`batch_too_large`: the largest batch one partition takes.");
        problem.Properties["freeBytes"] = Int64("`insufficient_storage`: the data volume's free bytes.");
        problem.Properties["capability"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "`not_supported`: what the storage backend lacks (`idempotencyKeys`, `conditionalAppend`, `topicAcks`)." };
        problem.Required = new HashSet<string> { "code", "status", "title" };
        problem.AdditionalPropertiesAllowed = true;
        problem.AdditionalProperties = null;
    }

    private static readonly HashSet<string> InputSchemas =
        ["CreateTopicRequest", "UpdateTopicRequest", "TopicConfigPatch", "ProduceRecord", "JoinRequest", "CommitRequest", "ResetOffsetsRequest"];

    private static readonly Dictionary<string, string[]> OmittedWhenAbsent = new(StringComparer.Ordinal)
    {
        ["FetchedRecord"] = ["key", "keyBase64", "value", "valueBase64", "headers"],
        ["MemberFetchResponse"] = ["resets"],
    };

    private static readonly HashSet<(string, string)> AlwaysRequired =
        [("CreateTopicRequest", "name"), ("JoinRequest", "topics"), ("ResetOffsetsRequest", "to"), ("ResetOffsetsRequest", "topic"), ("CommitRequest", "generation")];

    /// <summary>
    /// The forms of a reset target, named so that generated clients get a type for each; the server accepts exactly
    /// these (anything else is <c>invalid_reset_target</c>).
    /// </summary>
    private static OpenApiSchema ResetTarget(OpenApiDocument document)
    {
        static OpenApiSchema Only(string member, string description) => new()
        {
            Type = JsonSchemaType.Object,
            Required = new HashSet<string> { member },
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                [member] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int64", Minimum = "0", Description = description },
            },
            AdditionalPropertiesAllowed = false,
        };
        var schemas = document.Components!.Schemas!;
        schemas["ResetPosition"] = new OpenApiSchema
        {
            Type = JsonSchemaType.String,
            Enum = [JsonValue.Create("earliest"), JsonValue.Create("latest")],
            Description = "The partition's begin offset (`earliest`) or end offset (`latest`).",
        };
        schemas["ResetToOffset"] = Only("offset", "An offset between the partition's begin and end offsets.");
        schemas["ResetToTimestamp"] = Only("timestamp", "Epoch milliseconds: the first offset whose record timestamp is ≥ it (the end offset if none is).");
        return new OpenApiSchema
        {
            Description = "Where the offsets move: `earliest`, `latest`, an offset, or the first offset at or after a timestamp.",
            OneOf =
            [
                new OpenApiSchemaReference("ResetPosition", document),
                new OpenApiSchemaReference("ResetToOffset", document),
                new OpenApiSchemaReference("ResetToTimestamp", document),
            ],
        };
    }

    private static bool RefersTo(IOpenApiSchema schema, string id) =>
        schema is OpenApiSchemaReference { Reference.Id: var direct } && direct == id
        || schema.OneOf?.Any(s => s is OpenApiSchemaReference { Reference.Id: var inner } && inner == id) == true;

    private static bool IsNullable(IOpenApiSchema schema) =>
        schema is OpenApiSchema { Type: null, OneOf: null } // any JSON value, null included
        || schema.Type is JsonSchemaType type && type.HasFlag(JsonSchemaType.Null)
        || schema.OneOf?.Any(s => s.Type == JsonSchemaType.Null) == true;

    private void DescribeParameters(OpenApiOperation operation, string path)
    {
        var apiLimits = limits.Value;
        foreach (var parameter in (operation.Parameters ?? []).OfType<OpenApiParameter>())
        {
            var schema = parameter.Schema as OpenApiSchema;
            (string description, Action<OpenApiSchema>? constrain) = parameter.Name switch
            {
                "topic" => ("Topic name: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.", s => { s.Pattern = NamePattern; s.MaxLength = 249; }),
                "group" => ("Consumer group name: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.", s => { s.Pattern = NamePattern; s.MaxLength = 249; }),
                "memberId" => ("The member id the join returned.", null),
                "partition" when path.Contains("/events", StringComparison.Ordinal) => ("Stream only this partition.", Min(0)),
                "partition" when parameter.In == ParameterLocation.Query => ("Produce every record without its own `partition` to this partition.", Min(0)),
                "partition" => ("Partition number, from 0.", Min(0)),
                "offset" => ("Offset to start at; between the partition's begin and end offsets.", Min(0)),
                "before" => ("Records before this offset are deleted; at most the end offset.", Min(0)),
                "expectedOffset" => ("Append only if the partition's end offset is this; else 412 `offset_mismatch` with the actual `endOffset`.", Min(0)),
                "timestamp" when operation.OperationId is "FetchRecords" or "GetPartitionOffsets" => ("Epoch milliseconds: start at the first record whose timestamp is ≥ it.", Min(0)),
                "timestamp" => ("Epoch milliseconds for a raw-body record (default: now).", Min(0)),
                "limit" => ($"Most records to return (default {apiLimits.DefaultFetchRecords}).", Range(1, apiLimits.MaxFetchRecords)),
                "maxBytes" => ($"About this many bytes of records at most; at least one record is returned (default {apiLimits.DefaultFetchBytes}).", Range(1, apiLimits.MaxFetchBytes)),
                "waitMs" => ("Long-poll: with nothing to return yet, wait up to this long for a record to be committed (default 0).", Range(0, apiLimits.MaxWaitMs)),
                "acks" => ("`disk`: answer once the records are on disk (fsync); `memory`: once appended, persisted within the flush interval. Default: the topic's `acks`.", s => s.Enum = [JsonValue.Create("disk"), JsonValue.Create("memory")]),
                "key" => ("Key of a raw-body record (UTF-8); picks the partition by murmur2, as Kafka does.", null),
                "from" => ("`earliest`, `latest` (default) or an offset, for partitions without a position in `Last-Event-ID`.", null),
                "lastEventId" => ("The last event id received (as the `Last-Event-ID` header, for clients that cannot set headers).", null),
                "topics" => ("Comma-separated topics to read.", null),
                "sessionTimeoutMs" => ("Lease length.", Range(groups.Value.MinSessionTimeoutMs, groups.Value.MaxSessionTimeoutMs)),
                "autoOffsetReset" => ("Where to start partitions without a committed offset: `earliest` or `latest` (default).", s => s.Enum = [JsonValue.Create("earliest"), JsonValue.Create("latest")]),
                _ => (parameter.Description ?? "", null),
            };
            parameter.Description = description;
            if (schema is not null)
            {
                constrain?.Invoke(schema);
            }
        }
        if (operation.OperationId is "Produce" or "ProduceToPartition")
        {
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = "Idempotency-Key",
                In = ParameterLocation.Header,
                Description = "Makes retries safe: the same key with the same content appends once and replays the first answer; with other content 422 `idempotency_key_reused`.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = 255, Pattern = "^[!-~]+$" },
                Example = JsonValue.Create("5f0c6a8e-4b7e-4d47-9d4e-2c1f0a9b7e11"),
            });
        }
        if (operation.OperationId is "StreamTopic" or "StreamGroup")
        {
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = "Last-Event-ID",
                In = ParameterLocation.Header,
                Description = "Resume after this event: the `id:` of the last event received. Browsers' EventSource sends it on reconnect.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            });
        }
    }

    private static Action<OpenApiSchema> Min(long min) => s => s.Minimum = min.ToString(CultureInfo.InvariantCulture);

    private static Action<OpenApiSchema> Range(long min, long max) => s =>
    {
        s.Minimum = min.ToString(CultureInfo.InvariantCulture);
        s.Maximum = max.ToString(CultureInfo.InvariantCulture);
    };

    private static void DescribeBodies(OpenApiOperation operation)
    {
        if (operation.RequestBody?.Content is not { } content)
        {
            return;
        }
        foreach (var (mediaType, body) in content)
        {
            switch (mediaType)
            {
                case "application/x-ndjson":
                    body.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = "One `ProduceRecord` JSON object per line; read and validated as it streams." };
                    body.Example = JsonValue.Create("{\"key\":\"user-1\",\"value\":{\"event\":\"signup\"}}\n{\"key\":\"user-2\",\"value\":\"plain text\"}\n");
                    break;
                case "text/plain":
                    body.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = "One record whose value is this text; key from `?key=`." };
                    body.Example = JsonValue.Create("hello from a raw body");
                    break;
                case "application/octet-stream" or "*/*":
                    body.Schema = new OpenApiSchema { Type = JsonSchemaType.String, ContentMediaType = "application/octet-stream", Description = "One record whose value is these bytes; key from `?key=`." };
                    break;
                default:
                    body.Example ??= ExampleOf(body.Schema);
                    break;
            }
        }
    }

    private static void DescribeResponses(OpenApiOperation operation)
    {
        foreach (var (status, response) in operation.Responses ?? [])
        {
            if (response is not OpenApiResponse concrete)
            {
                continue;
            }
            if (status == "200" && operation.OperationId is "StreamTopic" or "StreamGroup")
            {
                concrete.Description = "An endless `text/event-stream`: `event: record` events, `event: reset` when a position moved, comment lines as keep-alives.";
                concrete.Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["text/event-stream"] = new()
                    {
                        Schema = new OpenApiSchema
                        {
                            Type = JsonSchemaType.String,
                            Description = "Server-Sent Events. `event: record`: `id:` an opaque cursor (send it back as `Last-Event-ID`), `data:` one " +
                                "`FetchedRecord` as JSON. `event: reset`: `data:` `{\"topic\",\"partition\",\"offset\",\"resetTo\"}` when a position " +
                                "moved (below the begin offset after retention). Lines starting with `:` are keep-alives.",
                            Extensions = new Dictionary<string, IOpenApiExtension>
                            {
                                ["x-event-data"] = new JsonNodeExtension(new JsonObject { ["record"] = new JsonObject { ["$ref"] = "#/components/schemas/FetchedRecord" } }),
                            },
                        },
                        Example = JsonValue.Create(
                            "retry: 3000\n\nid: AAAAAAAAAAE\nevent: record\ndata: {\"topic\":\"orders\",\"partition\":0,\"offset\":41,\"timestamp\":1764064800123,\"key\":\"user-1\",\"value\":{\"event\":\"signup\"}}\n\n"),
                    },
                };
                continue;
            }
            if (status == "200" && operation.OperationId is "Produce" or "ProduceToPartition")
            {
                concrete.Headers ??= new Dictionary<string, IOpenApiHeader>();
                concrete.Headers["Idempotency-Replayed"] = new OpenApiHeader
                {
                    Description = "`true` when this answer is the replay of an earlier request with the same `Idempotency-Key`.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("true")] },
                };
            }
            foreach (var (mediaType, body) in concrete.Content ?? new Dictionary<string, OpenApiMediaType>())
            {
                body.Example ??= mediaType == "application/problem+json" ? ProblemExample(operation.OperationId, status) : ExampleOf(body.Schema);
            }
        }
        if (operation.OperationId is "Produce" or "ProduceToPartition" && operation.Responses is { } responses && !responses.ContainsKey("422"))
        {
            responses["422"] = new OpenApiResponse
            {
                Description = "Unprocessable Content",
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["application/problem+json"] = new()
                    {
                        Schema = new OpenApiSchemaReference("ProblemDetails"),
                        Example = ProblemExample(operation.OperationId, "422"),
                    },
                },
            };
        }
    }

    private static JsonNode? ExampleOf(IOpenApiSchema? schema) =>
        schema is OpenApiSchemaReference reference && reference.Reference.Id is string id && Examples.TryGetValue(id, out string? json) ? JsonNode.Parse(json) : null;

    private static JsonObject ProblemExample(string? operation, string status)
    {
        (string code, string title, string detail) = (status, operation) switch
        {
            ("400", "CreateTopic") => ("invalid_topic_name", "Bad request", "A topic name is 1-249 characters of [a-zA-Z0-9._-], and not '.' or '..'."),
            ("400", "Produce" or "ProduceToPartition") => ("invalid_record", "Bad request", "records[0]: give the key once, as key or keyBase64."),
            ("400", "JoinGroup" or "StreamGroup") => ("invalid_group_name", "Bad request", "A group name is 1-249 characters of [a-zA-Z0-9._-], and not '.' or '..'."),
            ("400", _) => ("invalid_parameter", "Bad request", "limit is between 1 and 10000."),
            ("401", _) => ("unauthorized", "Unauthorized", "Send credentials: Authorization: Bearer <API key or JWT> (for SSE from a browser, ?access_token=)."),
            ("403", _) => ("forbidden", "Forbidden", "'alice' may not produce topic 'orders'."),
            ("404", "Heartbeat" or "LeaveGroup" or "FetchAsMember" or "CommitOffsets") => ("unknown_member", "Unknown member", "Member 'c1b2' is not in group 'billing' (its lease expired?): join again."),
            ("404", "DescribeGroup" or "DeleteGroup" or "ResetOffsets") => ("group_not_found", "Group not found", "Group 'billing' does not exist."),
            ("404", _) => ("topic_not_found", "Topic not found", "Topic 'orders' does not exist."),
            ("409", "Produce" or "ProduceToPartition") => ("idempotency_conflict", "Conflict", "The records this key appended earlier were placed differently (did the topic grow?); use a new key."),
            ("409", "CreateTopic") => ("topic_exists", "Topic exists", "Topic 'orders' already exists."),
            ("409", "JoinGroup" or "StreamGroup") => ("group_in_use", "Group in use", "Group 'billing' has members that are Kafka clients; a group is used over one protocol at a time."),
            ("409", "DeleteGroup") => ("group_not_empty", "Group not empty", "Group 'billing' has active members."),
            ("409", _) => ("stale_generation", "Stale generation", "Generation 3 is not the group's current generation 4: heartbeat or fetch to see your new assignment."),
            ("412", _) => ("offset_mismatch", "Offset mismatch", "Partition 0 ends at offset 42, not 41."),
            ("413", _) => ("request_too_large", "Request too large", "The request body is larger than 33554432 bytes."),
            ("416", _) => ("offset_out_of_range", "Offset out of range", "Offset 900 is outside partition 0's range [0, 42]."),
            ("422", _) => ("idempotency_key_reused", "Idempotency key reused", "Idempotency-Key '5f0c6a8e' was used for a request with other content."),
            ("429", _) => ("quota_exceeded", "Too many requests", "Principal 'alice' is over its produce byte rate."),
            ("501", "CreateTopic" or "UpdateTopic") =>
                ("not_supported", "Not supported", "The kafka backend keeps no acks per topic (a Kafka cluster refuses topic configs it does not know): leave config.acks at the server's default (disk) and give ?acks= with each produce request."),
            ("501", _) => ("not_supported", "Not supported", "This server's storage backend does not keep Idempotency-Key windows: send the request without the header."),
            ("503", _) => ("storage_unavailable", "Storage unavailable", "Partition 0 of topic 'orders' is not available: its last commit failed."),
            ("507", _) => ("insufficient_storage", "Insufficient storage", "Free disk space is below the configured reserve; appends resume when space is freed."),
            _ => ("internal_error", "Internal error", "The server failed to handle the request."),
        };
        return new JsonObject
        {
            ["type"] = $"https://gateway.dev/problems/{code.Replace('_', '-')}",
            ["title"] = title,
            ["status"] = int.Parse(status, CultureInfo.InvariantCulture),
            ["detail"] = detail,
            ["code"] = code,
        };
    }

    /// <summary>One example per component schema used as a body; each is checked against its schema by the linter in CI.</summary>
    private static readonly Dictionary<string, string> Examples = new(StringComparer.Ordinal)
    {
        ["CreateTopicRequest"] = """{"name":"orders","partitions":3,"config":{"retentionMs":604800000,"acks":"disk"}}""",
        ["UpdateTopicRequest"] = """{"partitions":6,"config":{"retentionBytes":1073741824}}""",
        ["TopicDescription"] = """
            {"name":"orders","config":{"retentionMs":604800000,"retentionBytes":-1,"maxRecordBytes":1048576,"acks":"disk"},"createdAt":1764064800123,
             "partitions":[{"partition":0,"beginOffset":0,"endOffset":42,"sizeBytes":9300,"sizeOnDiskBytes":12288,"oldestTimestamp":1764064800200}]}
            """,
        ["TopicList"] = """{"topics":[{"name":"orders","partitions":3,"config":{"retentionMs":604800000,"retentionBytes":-1,"maxRecordBytes":1048576,"acks":"disk"},"createdAt":1764064800123}]}""",
        ["PartitionOffsets"] = """{"partition":0,"beginOffset":0,"endOffset":42,"timestamp":1764064800000,"offset":17}""",
        ["DeleteRecordsResponse"] = """{"partition":0,"beginOffset":20,"endOffset":42}""",
        ["ProduceRequest"] = """
            {"records":[{"key":"user-1","value":{"event":"signup","plan":"pro"},"headers":{"trace":"abc"}},
                        {"keyBase64":"AAE=","valueBase64":"3q2+7w==","partition":1,"timestamp":1764064800123}]}
            """,
        ["ProduceResponse"] = """{"offsets":[{"partition":2,"offset":41},{"partition":1,"offset":7}]}""",
        ["FetchResponse"] = """
            {"records":[{"topic":"orders","partition":0,"offset":41,"timestamp":1764064800123,"key":"user-1","value":{"event":"signup"},"headers":{"trace":"abc"}}],
             "nextOffset":42,"beginOffset":0,"endOffset":42}
            """,
        ["JoinRequest"] = """{"topics":["orders"],"sessionTimeoutMs":30000,"autoOffsetReset":"earliest"}""",
        ["MemberResponse"] = """
            {"memberId":"c1b2d3e4f5","generation":4,"assignments":[{"topic":"orders","partition":0},{"topic":"orders","partition":1}],
             "topics":["orders"],"autoOffsetReset":"earliest","leaseExpiresAt":"2026-11-30T12:00:30.000Z","heartbeatIntervalMs":10000}
            """,
        ["MemberFetchResponse"] = """
            {"memberId":"c1b2d3e4f5","generation":4,"assignments":[{"topic":"orders","partition":0}],
             "records":[{"topic":"orders","partition":0,"offset":41,"timestamp":1764064800123,"key":"user-1","value":{"event":"signup"}}]}
            """,
        ["CommitRequest"] = """{"generation":4,"offsets":[{"topic":"orders","partition":0,"offset":42}]}""",
        ["CommitResponse"] = """{"generation":4,"offsets":[{"topic":"orders","partition":0,"offset":42}]}""",
        ["GroupList"] = """{"groups":[{"name":"billing","generation":4,"members":2}]}""",
        ["GroupView"] = """
            {"name":"billing","generation":4,
             "members":[{"memberId":"c1b2d3e4f5","topics":["orders"],"assignments":[{"topic":"orders","partition":0}],"pending":[],"leaseExpiresAt":"2026-11-30T12:00:30.000Z","sessionTimeoutMs":30000}],
             "offsets":[{"topic":"orders","partition":0,"committedOffset":40,"endOffset":42,"lag":2}]}
            """,
        ["ResetOffsetsRequest"] = """{"topic":"orders","to":"earliest"}""",
        ["ResetOffsetsResponse"] = """{"offsets":[{"topic":"orders","partition":0,"offset":0}]}""",
    };
}
