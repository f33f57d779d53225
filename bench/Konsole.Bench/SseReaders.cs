using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Konsole.Testing;

namespace Konsole.Bench;

/// <summary>
/// The streaming scenario's clients: 100 SSE streams read by a process of their own (this program, <c>sse-readers</c>), as
/// konui's browsers would be, so their parsing and garbage do not run inside the gateway's process and pause it.
/// </summary>
public static class SseReaders
{
    public sealed record Outcome(long Events, double Seconds, double DelayP50, double DelayP99, List<string> Failed);

    /// <summary>Starts the reader process; its streams open at each <see cref="Running.GoAsync"/>, one turn per session.</summary>
    public static async Task<Running> StartAsync(Uri gateway, string prompt, IReadOnlyList<string> sessions)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { typeof(SseReaders).Assembly.Location, "sse-readers", gateway.ToString(), prompt, string.Join(",", sessions) })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the SSE reader process");
        if (await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) != "ready")
            throw new InvalidOperationException("the SSE reader process did not start");
        return new Running(process);
    }

    public sealed class Running(Process process) : IDisposable
    {
        public async Task<Outcome> GoAsync()
        {
            await process.StandardInput.WriteLineAsync("go");
            await process.StandardInput.FlushAsync();
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(600))
                ?? throw new InvalidOperationException("the SSE reader process ended without a report");
            return JsonSerializer.Deserialize<Outcome>(line)!;
        }

        public void Dispose()
        {
            if (!process.HasExited)
                process.Kill();
            process.Dispose();
        }
    }

    /// <summary>
    /// The reader process: at each <c>go</c> on stdin, posts the prompt to every session at once, reads each stream to its
    /// end and reports on stdout; ends with stdin.
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var (gateway, prompt, sessions) = (new Uri(args[0]), args[1], args[2].Split(','));
        using var client = new HttpClient { BaseAddress = gateway, Timeout = Timeout.InfiniteTimeSpan };
        // One turn first, so this process's own code is compiled before the measured one.
        await ReadAsync(client, sessions[0], "[[chunks:200:0]] warm the reader");
        Console.WriteLine("ready");
        while (await Console.In.ReadLineAsync() == "go")
            Console.WriteLine(JsonSerializer.Serialize(await TurnAsync(client, prompt, sessions)));
        return 0;
    }

    private static async Task<Outcome> TurnAsync(HttpClient client, string prompt, string[] sessions)
    {
        var delays = new Samples("event delay");
        var events = 0L;
        var failed = new List<string>();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(sessions.Select(async s =>
        {
            var (count, last, local, status) = await ReadAsync(client, s, prompt);
            lock (delays)
            {
                events += count;
                foreach (var d in local)
                    delays.Add(d);
                if (last is not { Event: "result" } || !Answers.Succeeded(last.Data))
                    failed.Add($"{s}: {status}, {count} events, the last {last}");
            }
        }));
        return new Outcome(events, clock.Elapsed.TotalSeconds, delays.P50, delays.P99, failed);
    }

    private static async Task<(int Count, SseEvent? Last, List<double> Delays, int Status)> ReadAsync(HttpClient client, string session, string prompt)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/session/{session}/prompt") { Content = JsonContent.Create(new { prompt }) };
        await using var stream = await SseStream.OpenAsync(client, request, TimeSpan.FromSeconds(300), keep: false);
        var delays = new List<double>();
        SseEvent? last = null;
        var count = 0;
        while (await stream.NextAsync(TimeSpan.FromSeconds(300)) is { } e)
        {
            last = e;
            count++;
            if (EmittedMs(e.Data) is { } emitted)
                delays.Add((DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds - emitted);
        }
        return (count, last, delays, (int)stream.Response.StatusCode);
    }

    private static double? EmittedMs(string data)
    {
        var at = data.IndexOf("\"emitted_ms\":", StringComparison.Ordinal);
        if (at < 0)
            return null;
        var start = at + "\"emitted_ms\":".Length;
        var end = start;
        while (end < data.Length && (char.IsDigit(data[end]) || data[end] is '.' or 'E' or 'e' or '-' or '+'))
            end++;
        return double.TryParse(data.AsSpan(start, end - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) ? ms : null;
    }
}
