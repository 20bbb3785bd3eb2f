using System.IO.Pipelines;

// A trivial Kestrel app: the ceiling the gateway is measured against (see bench/README.md).
//   POST /post  reads the whole body (discarded) and answers 200 {"ok":true}   (B1: 1 KB and 100 KB bodies)
//   GET  /blob  answers a preallocated 1 MiB buffer                             (B2)
//   POST /post-durable  reads the whole body, makes it durable with every body that came meanwhile (one write-through
//               write per round, group commit), then answers as /post           (B6: the floor of acks=disk)
// The address comes from --urls; B6's file from --DurableFile (default: in the temp folder), removed at exit.
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

// Created by the first durable request (so that B1's start, timed by bench/restart.sh, does not pay for its file).
var durable = new Lazy<GroupCommitFile>(() => new GroupCommitFile(
    builder.Configuration["DurableFile"] ?? Path.Combine(Path.GetTempPath(), $"baseline-durable-{Environment.ProcessId}.log")));
app.Lifetime.ApplicationStopped.Register(() =>
{
    if (durable.IsValueCreated)
    {
        durable.Value.Dispose();
    }
});
app.MapPost("/post-durable", async (HttpContext context) =>
{
    var body = context.Request.BodyReader;
    while (true)
    {
        var result = await body.ReadAsync(context.RequestAborted);
        if (result.IsCompleted || result.IsCanceled)
        {
            var appended = durable.Value.AppendAsync(result.Buffer);
            body.AdvanceTo(result.Buffer.End);
            await appended;
            break;
        }
        body.AdvanceTo(result.Buffer.Start, result.Buffer.End);
    }
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

/// <summary>
/// Makes request bodies durable with group commit: a body is copied into the pending round; one loop on the thread
/// pool writes each round with one write-through write (<c>O_SYNC</c>) and releases its requests with one work item
/// (their continuations run there one after another), while the next round gathers. The file is written once with
/// zeros (256 MiB) and then overwritten round after round, wrapping at its end: a write then changes no file size and
/// allocates no block, as the gateway's log writes past its tail. What every durable HTTP server here pays at the
/// least: one disk write and cache flush per round, and a wait for it per request.
/// </summary>
internal sealed class GroupCommitFile : IDisposable
{
    private const long FileBytes = 256L << 20;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _file;
    private readonly Lock _lock = new();
    private System.Buffers.ArrayBufferWriter<byte> _pending = new(1 << 20);
    private System.Buffers.ArrayBufferWriter<byte> _writing = new(1 << 20);
    private TaskCompletionSource _round = new();
    private bool _flushing;
    private long _offset;

    public GroupCommitFile(string path)
    {
        using (var zeros = new FileStream(path, FileMode.Create, FileAccess.Write))
        {
            byte[] chunk = new byte[1 << 20];
            for (long written = 0; written < FileBytes; written += chunk.Length)
            {
                zeros.Write(chunk);
            }
            zeros.Flush(flushToDisk: true);
        }
        _file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, FileOptions.WriteThrough | FileOptions.DeleteOnClose);
    }

    /// <summary>Completes once the body is on disk.</summary>
    public Task AppendAsync(System.Buffers.ReadOnlySequence<byte> body)
    {
        lock (_lock)
        {
            foreach (var segment in body)
            {
                System.Buffers.BuffersExtensions.Write(_pending, segment.Span);
            }
            var round = _round.Task;
            if (!_flushing)
            {
                _flushing = true;
                ThreadPool.UnsafeQueueUserWorkItem(static file => file.FlushLoop(), this, preferLocal: false);
            }
            return round;
        }
    }

    public void Dispose() => _file.Dispose();

    private void FlushLoop()
    {
        while (true)
        {
            TaskCompletionSource round;
            lock (_lock)
            {
                if (_pending.WrittenCount == 0)
                {
                    _flushing = false;
                    return;
                }
                (_pending, _writing) = (_writing, _pending);
                round = _round;
                _round = new TaskCompletionSource();
            }
            try
            {
                if (_offset + _writing.WrittenCount > FileBytes)
                {
                    _offset = 0;
                }
                RandomAccess.Write(_file, _writing.WrittenSpan, _offset);
                _offset += _writing.WrittenCount;
                ThreadPool.UnsafeQueueUserWorkItem(static done => done.SetResult(), round, preferLocal: false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static failed => failed.Round.SetException(failed.Error), (Round: round, Error: ex), preferLocal: false);
            }
            _writing.ResetWrittenCount();
        }
    }
}
