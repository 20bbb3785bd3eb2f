namespace Gateway.Storage;

/// <summary>
/// How a key or value was produced, kept in the record's attribute byte so that it comes back the way it went in.
/// The bytes themselves are never re-encoded.
/// </summary>
public enum PayloadFormat : byte
{
    /// <summary>Opaque bytes (shown as base64).</summary>
    Binary = 0,

    /// <summary>UTF-8 text (shown as a JSON string).</summary>
    Text = 1,

    /// <summary>A UTF-8 JSON document (shown as JSON).</summary>
    Json = 2,
}
