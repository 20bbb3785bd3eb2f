using System.Net.ServerSentEvents;

namespace Gateway.Server.Tests;

/// <summary>An SSE subscription read with the framework's spec-following parser.</summary>
internal sealed class SseClient : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly CancellationTokenSource _stop = new();
    private readonly IAsyncEnumerator<SseItem<string>> _events;
    private Task<bool>? _pending;

    private SseClient(HttpResponseMessage response, Stream body)
    {
        _response = response;
        Parser = SseParser.Create(body);
        _events = Parser.EnumerateAsync(_stop.Token).GetAsyncEnumerator(_stop.Token);
    }

    public SseParser<string> Parser { get; }

    public HttpResponseMessage Response => _response;

    public static async Task<SseClient> OpenAsync(HttpClient client, string path, string? lastEventId = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
        {
            Assert.Fail($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        return new SseClient(response, await response.Content.ReadAsStreamAsync());
    }

    /// <summary>The next event of the given type, within the timeout.</summary>
    public async Task<SseItem<string>> NextAsync(string type = "record", int timeoutSeconds = 20)
    {
        var deadline = Task.Delay(TimeSpan.FromSeconds(timeoutSeconds));
        while (true)
        {
            var next = _pending ??= _events.MoveNextAsync().AsTask();
            if (await Task.WhenAny(next, deadline) == deadline)
            {
                throw new TimeoutException($"no '{type}' event within {timeoutSeconds} s");
            }
            _pending = null;
            Assert.True(await next, "the stream ended");
            if (_events.Current.EventType == type)
            {
                return _events.Current;
            }
        }
    }

    /// <summary>True when the server ends the stream within the timeout.</summary>
    public async Task<bool> EndsAsync(int timeoutSeconds = 20)
    {
        var deadline = Task.Delay(TimeSpan.FromSeconds(timeoutSeconds));
        while (true)
        {
            var next = _pending ??= _events.MoveNextAsync().AsTask();
            if (await Task.WhenAny(next, deadline) == deadline)
            {
                return false;
            }
            _pending = null;
            if (!await next)
            {
                return true;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _response.Dispose();
        try
        {
            if (_pending is not null)
            {
                await _pending;
            }
            await _events.DisposeAsync();
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or HttpRequestException or ObjectDisposedException)
        {
        }
        _stop.Dispose();
    }
}
