using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gateway.Server.Tests.Streaming;

/// <summary>
/// The built-in page in a real browser: headless Chromium opens it, produces a record from the form and sees it
/// arrive through EventSource. Driven over the DevTools protocol; skipped where no Chromium is installed
/// (.ci/run installs Debian's chromium).
/// </summary>
public sealed class BrowserTests : IDisposable
{
    private readonly TempDirectory _dataDirectory = new("gateway-browser-tests", create: false);
    private readonly TempDirectory _profileDirectory = new("gateway-browser-profile", create: false);

    public void Dispose()
    {
        _dataDirectory.Dispose();
        _profileDirectory.Dispose();
    }

    private static string? FindChromium() =>
        new[] { Environment.GetEnvironmentVariable("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }
            .FirstOrDefault(p => !string.IsNullOrEmpty(p) && File.Exists(p));

    [SkippableFact]
    public async Task The_page_shows_a_record_produced_from_its_form_through_event_source()
    {
        string? chromium = FindChromium();
        Skip.If(chromium is null, "No Chromium found (install Debian's chromium or set CHROMIUM_PATH); .ci/run installs it.");

        await using var server = await ServerProcess.StartAsync(_dataDirectory.Path);
        await Http.CreateTopicAsync(server.Client, "browser", 2);
        await Http.ProduceAsync(server.Client, "browser", """[{"key":"earlier","value":{"n":1}}]""");

        var start = new ProcessStartInfo(chromium!)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[]
        {
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--remote-debugging-port=0", $"--user-data-dir={_profileDirectory.Path}",
            $"{server.Address}?topic=browser&from=earliest",
        })
        {
            start.ArgumentList.Add(arg);
        }
        using var browser = Process.Start(start)!;
        try
        {
            string debugger = await DevToolsAddressAsync(browser);
            using var http = new HttpClient();
            var targets = JsonNode.Parse(await http.GetStringAsync(new Uri(new Uri(debugger.Replace("ws://", "http://", StringComparison.Ordinal)), "/json/list")))!.AsArray();
            string pageSocket = (string)targets.First(t => (string?)t!["type"] == "page")!["webSocketDebuggerUrl"]!;
            using var page = new ClientWebSocket();
            await page.ConnectAsync(new Uri(pageSocket), CancellationToken.None);
            var devtools = new DevTools(page);

            // The stored record arrives through EventSource once the page is watching.
            await devtools.WaitForAsync("document.querySelector('#records')?.textContent.includes('earlier')");
            await devtools.EvaluateAsync("document.getElementById('key').value = 'from-the-form'; document.getElementById('value').value = '{\"hello\":\"browser\"}'; document.getElementById('produce').click(); true");
            await devtools.WaitForAsync("document.querySelector('#records')?.textContent.includes('from-the-form')");
            string text = await devtools.EvaluateAsync("document.querySelector('#records').textContent");
            Assert.Contains("{\"hello\":\"browser\"}", text, StringComparison.Ordinal);
            Assert.Contains("live: browser", await devtools.EvaluateAsync("document.getElementById('status').textContent"), StringComparison.Ordinal);

            // A tombstone is marked as one; the text "null" is shown as text, not as a tombstone.
            await Http.ProduceAsync(server.Client, "browser", """[{"key":"gone","value":null},{"key":"text-null","value":"null"}]""");
            await devtools.WaitForAsync("document.querySelector('#records')?.textContent.includes('text-null')");
            string rows = await devtools.EvaluateAsync(
                "JSON.stringify([...document.querySelectorAll('#records tr')].map(r => [r.children[3].textContent, r.lastChild.textContent, !!r.querySelector('.tombstone')]))");
            var shown = JsonNode.Parse(rows)!.AsArray().ToDictionary(r => (string)r![0]!, r => ((string)r![1]!, (bool)r[2]!));
            Assert.Equal(("tombstone", true), shown["gone"]);
            Assert.Equal(("null", false), shown["text-null"]);

            // And the record really is in the log.
            var stored = new List<string>();
            for (int p = 0; p < 2; p++)
            {
                var fetched = await Http.GetJsonAsync(server.Client, $"/v1/topics/browser/partitions/{p}/records");
                stored.AddRange(Http.Records(fetched).Select(r => (string?)r!["key"] ?? ""));
            }
            Assert.Contains("from-the-form", stored);
        }
        finally
        {
            browser.Kill(entireProcessTree: true);
            await browser.WaitForExitAsync();
        }
    }

    private static async Task<string> DevToolsAddressAsync(Process browser)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await browser.StandardError.ReadLineAsync(timeout.Token) is { } line)
        {
            const string marker = "DevTools listening on ";
            int at = line.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0)
            {
                return line[(at + marker.Length)..].Trim();
            }
        }
        throw new InvalidOperationException("Chromium did not print its DevTools address.");
    }

    /// <summary>The few DevTools protocol calls the test needs: evaluate an expression, wait for one to hold.</summary>
    private sealed class DevTools(ClientWebSocket socket)
    {
        private int _id;

        public async Task<string> EvaluateAsync(string expression)
        {
            int id = ++_id;
            var request = new JsonObject
            {
                ["id"] = id,
                ["method"] = "Runtime.evaluate",
                ["params"] = new JsonObject { ["expression"] = expression, ["returnByValue"] = true },
            };
            await socket.SendAsync(Encoding.UTF8.GetBytes(request.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (true)
            {
                var message = JsonNode.Parse(await ReceiveAsync(timeout.Token))!;
                if ((int?)message["id"] == id)
                {
                    var value = message["result"]?["result"]?["value"];
                    return value is null ? "" : value.GetValueKind() == JsonValueKind.String ? (string)value! : value.ToJsonString();
                }
            }
        }

        public async Task WaitForAsync(string condition)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                if (await EvaluateAsync($"!!({condition})") == "true")
                {
                    return;
                }
                await Task.Delay(100);
            }
            throw new TimeoutException($"the page never satisfied: {condition}");
        }

        private async Task<string> ReceiveAsync(CancellationToken cancellationToken)
        {
            var buffer = new byte[64 * 1024];
            using var message = new MemoryStream();
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, cancellationToken);
                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    return Encoding.UTF8.GetString(message.ToArray());
                }
            }
        }
    }
}
