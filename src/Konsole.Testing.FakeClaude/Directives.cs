using System.Globalization;
using System.Text.RegularExpressions;

namespace Konsole.Testing.FakeClaude;

/// <summary>
/// Faults and shapes a prompt asks FakeClaude for, written as <c>[[name:args]]</c> anywhere in its text:
/// <list type="bullet">
/// <item><c>[[delay:MS]]</c> wait before answering; <c>[[quiet:MS]]</c> take the prompt only MS after it came (nothing printed
/// for it meanwhile, not even its <c>command_lifecycle</c> lines: a CLI slow to show it has it); <c>[[chunks:N:MS]]</c> stream N assistant frames MS apart.</item>
/// <item><c>[[crash]]</c> / <c>[[crash:CODE]]</c> exit mid-turn (code 3 by default); <c>[[hang]]</c> go silent for good, interrupts included.</item>
/// <item><c>[[garbage:N]]</c> N hostile stdout lines (not JSON, invalid UTF-8, truncated, untyped, unknown types, a type with line breaks).</item>
/// <item><c>[[huge:BYTES]]</c> the assistant frame carries BYTES of text; <c>[[huge-result:BYTES]]</c> the result does; <c>[[stderr:N]]</c> / <c>[[stderr:N:BYTES]]</c> N lines (of about BYTES) on stderr first.</item>
/// <item><c>[[env:NAME]]</c> append <c>env NAME=value</c> (or <c>&lt;unset&gt;</c>) to the answer; <c>[[stderr-env:NAME]]</c> write that line on stderr first.</item>
/// <item><c>[[child]]</c> start a <c>sleep</c> that runs on after the turn (as a tool's background command would) and
/// append <c>child PID</c> to the answer (<c>[[child:stderr]]</c>: one that keeps the CLI's stderr open, as a command started with
/// its parent's stderr does); <c>[[detached]]</c> the same in a session and process group of its own
/// (<c>setsid sleep</c>, as a tool detaching a command on purpose would), still the CLI's child; <c>[[detached:orphan]]</c> the same
/// started through a shell that exits at once, as the Bash tool's <c>setsid sleep 600 &amp;</c> does, so its parent is no longer the CLI.</item>
/// <item><c>[[rate-limit]]</c> / <c>[[rate-limit:SECONDS]]</c> a rejected rate limit resetting in an hour (or SECONDS) and
/// an <c>is_error</c> result, as the real CLI shows an API 429;
/// <c>[[rate-warning:UTILIZATION]]</c> an <c>allowed_warning</c> rate limit event; <c>[[api-error:STATUS]]</c> an <c>is_error</c>
/// result with that <c>api_error_status</c> and no <c>rate_limit_event</c>, as an API-key account's CLI shows a 429.</item>
/// <item><c>[[clear:error]]</c> / <c>[[clear:crash]]</c> / <c>[[clear:hang]]</c> the next <c>/clear</c> answers with an <c>is_error</c>
/// result and keeps the conversation, exits (code 3), or goes silent for good.</item>
/// <item><c>[[stray-result]]</c> before the answer, a <c>result</c> naming another user message (a late one of an earlier prompt).</item>
/// <item><c>[[finish-on-interrupt]]</c> go silent until an interrupt arrives, then answer with a success result all the same,
/// as a CLI whose turn ended just as the interrupt reached it.</item>
/// </list>
/// The answer is <c>echo: &lt;the text without directives&gt;</c>, followed by <c>[history: a | b]</c> when the
/// conversation had earlier prompts (<c>[[no-history]]</c>: not, so every turn's lines keep one size however long the
/// conversation, as a benchmark's turns must).
/// </summary>
public sealed partial record Directives(
    string Text,
    int DelayMs,
    int Chunks,
    int ChunkDelayMs,
    int? CrashCode,
    bool Hang,
    int Garbage,
    int Huge,
    int HugeResult,
    int Stderr,
    int StderrBytes,
    IReadOnlyList<string> Env,
    int? RateLimitSeconds,
    double? RateWarning,
    string? Child,
    int? ApiError = null,
    string? ClearFault = null,
    bool FinishOnInterrupt = false,
    string? Detached = null,
    IReadOnlyList<string>? StderrEnv = null,
    int QuietMs = 0,
    bool NoHistory = false,
    bool StrayResult = false)
{
    public static Directives Parse(string prompt)
    {
        int delay = 0, quiet = 0, chunks = 0, chunkDelay = 0, garbage = 0, huge = 0, hugeResult = 0, stderr = 0, stderrBytes = 80;
        int? crash = null;
        bool hang = false, finishOnInterrupt = false, noHistory = false, strayResult = false;
        int? rateLimit = null, apiError = null;
        string? clearFault = null, detached = null, child = null;
        double? rateWarning = null;
        var env = new List<string>();
        var stderrEnv = new List<string>();
        var text = Directive().Replace(prompt, m =>
        {
            var args = m.Groups["args"].Success ? m.Groups["args"].Value.Split(':') : [];
            int Int(int index, int fallback) => index < args.Length && int.TryParse(args[index], CultureInfo.InvariantCulture, out var n) ? n : fallback;
            switch (m.Groups["name"].Value)
            {
                case "delay": delay = Int(0, 0); break;
                case "quiet": quiet = Int(0, 0); break;
                case "chunks": chunks = Int(0, 10); chunkDelay = Int(1, 0); break;
                case "crash": crash = Int(0, 3); break;
                case "hang": hang = true; break;
                case "child": child = args.Length > 0 ? args[0] : ""; break;
                case "detached": detached = args.Length > 0 ? args[0] : ""; break;
                case "garbage": garbage = Int(0, 10); break;
                case "huge": huge = Int(0, 1 << 20); break;
                case "huge-result": hugeResult = Int(0, 1 << 20); break;
                case "stderr": stderr = Int(0, 100); stderrBytes = Int(1, 80); break;
                case "env": env.Add(args.Length > 0 ? args[0] : ""); break;
                case "stderr-env": stderrEnv.Add(args.Length > 0 ? args[0] : ""); break;
                case "rate-limit": rateLimit = Int(0, 3600); break;
                case "api-error": apiError = Int(0, 429); break;
                case "clear": clearFault = args.Length > 0 ? args[0] : "error"; break;
                case "finish-on-interrupt": finishOnInterrupt = true; break;
                case "no-history": noHistory = true; break;
                case "stray-result": strayResult = true; break;
                case "rate-warning":
                    rateWarning = args.Length > 0 && double.TryParse(args[0], CultureInfo.InvariantCulture, out var u) ? u : 0.9;
                    break;
                default: return m.Value;
            }
            return "";
        }).Trim();
        return new Directives(text, delay, chunks, chunkDelay, crash, hang, garbage, huge, hugeResult, stderr, stderrBytes, env, rateLimit, rateWarning, child,
            apiError, clearFault, finishOnInterrupt, detached, stderrEnv, quiet, noHistory, strayResult);
    }

    /// <summary>The answer to this prompt in a conversation that held <paramref name="history"/> before it.</summary>
    public string Answer(IReadOnlyList<string> history)
    {
        var answer = $"echo: {Text}";
        var earlier = history.Where(p => p.Length > 0).ToList();
        if (earlier.Count > 0 && !NoHistory)
            answer += $" [history: {string.Join(" | ", earlier)}]";
        foreach (var name in Env)
            answer += $" {EnvLine(name)}";
        return answer;
    }

    public static string EnvLine(string name) => $"env {name}={Environment.GetEnvironmentVariable(name) ?? "<unset>"}";

    [GeneratedRegex(@"\[\[(?<name>[a-z][a-z-]*)(?::(?<args>[^\]]*))?\]\]")]
    private static partial Regex Directive();
}
