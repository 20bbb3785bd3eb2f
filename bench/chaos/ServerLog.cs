using System.Text.RegularExpressions;

namespace Gateway.Chaos;

/// <summary>
/// Every line the server processes print, into one file (with a marker per start), and a tally of the distinct
/// Warning-and-above messages for the report.
/// </summary>
internal sealed partial class ServerLog : IDisposable
{
    private readonly Lock _lock = new();
    private readonly StreamWriter _file;
    private readonly Dictionary<string, int> _warnings = new(StringComparer.Ordinal);
    private readonly List<string> _sinceMark = [];

    public ServerLog(string path)
    {
        _file = new StreamWriter(path, append: false) { AutoFlush = true };
    }

    /// <summary>Distinct Warning/Error/Fatal messages (numbers folded to #) since the last call, and how often each was logged.</summary>
    public IReadOnlyList<(string Message, int Count)> TakeWarnings()
    {
        lock (_lock)
        {
            List<(string, int)> warnings = [.. _warnings.OrderByDescending(w => w.Value).Select(w => (w.Key, w.Value))];
            _warnings.Clear();
            return warnings;
        }
    }

    /// <summary>Warning-and-above lines (and the exception lines after them) since the last <see cref="Mark"/>.</summary>
    public IReadOnlyList<string> SinceMark
    {
        get
        {
            lock (_lock)
            {
                return [.. _sinceMark];
            }
        }
    }

    public void Mark(string text)
    {
        lock (_lock)
        {
            _file.WriteLine($"===== {DateTime.UtcNow:HH:mm:ss.fff} {text} =====");
            _sinceMark.Clear();
        }
    }

    public void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lock)
        {
            _file.WriteLine(line);
            var level = LevelLine().Match(line);
            if (level.Success)
            {
                string message = Numbers().Replace(line[level.Length..], "#");
                string key = $"{level.Groups[1].Value} {message[..Math.Min(message.Length, 200)]}";
                _warnings[key] = _warnings.GetValueOrDefault(key) + 1;
                _sinceMark.Add(line);
            }
            else if (_sinceMark.Count is > 0 and < 200 && line.Length > 0 && !line.StartsWith('['))
            {
                _sinceMark.Add(line);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _file.Dispose();
        }
    }

    [GeneratedRegex(@"^\[[0-9:.]+ (WRN|ERR|FTL)\] ")]
    private static partial Regex LevelLine();

    [GeneratedRegex("[0-9]+")]
    private static partial Regex Numbers();
}
