using System.IO.Pipelines;

// A trivial Kestrel app: the ceiling the gateway is measured against (see bench/README.md).
//   POST /post  reads the whole body (discarded) and answers 200 {"ok":true}   (B1: 1 KB and 100 KB bodies)
//   GET  /blob  answers a preallocated 1 MiB buffer                             (B2)
// The address comes from --urls.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    kestrel.Limits.MaxRequestBodySize = 32 * 1024 * 1024;
});

var app = builder.Build();

byte[] ok = """{"ok":true}"""u8.ToArray();
byte[] blob = new byte[1024 * 1024];
Random.Shared.NextBytes(blob);

app.MapPost("/post", async (HttpContext context) =>
{
    await BaselineHandlers.DrainAsync(context.Request.BodyReader, context.RequestAborted);
    context.Response.StatusCode = StatusCodes.Status200OK;
    context.Response.ContentType = "application/json";
    context.Response.ContentLength = ok.Length;
    await context.Response.Body.WriteAsync(ok, context.RequestAborted);
});

app.MapGet("/blob", async (HttpContext context) =>
{
    context.Response.StatusCode = StatusCodes.Status200OK;
    context.Response.ContentType = "application/octet-stream";
    context.Response.ContentLength = blob.Length;
    await context.Response.Body.WriteAsync(blob, context.RequestAborted);
});

app.MapGet("/health", () => Results.Text("ok"));

app.Run();

internal static class BaselineHandlers
{
    /// <summary>Reads the request body to its end and throws it away.</summary>
    public static async Task DrainAsync(PipeReader body, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await body.ReadAsync(cancellationToken);
            body.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                break;
            }
        }
    }
}
