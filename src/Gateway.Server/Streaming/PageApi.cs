namespace Gateway.Server.Streaming;

/// <summary>The built-in page at <c>/</c>: watch a topic live through <c>EventSource</c> and produce test records. No build step.</summary>
public static class PageApi
{
    private static readonly Lazy<byte[]> Page = new(() =>
    {
        using var stream = typeof(PageApi).Assembly.GetManifestResourceStream("Gateway.Server.Streaming.index.html")
            ?? throw new InvalidOperationException("index.html is not embedded.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static IEndpointRouteBuilder MapPage(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", () => TypedResults.Bytes(Page.Value, "text/html; charset=utf-8")).ExcludeFromDescription();
        return app;
    }
}
