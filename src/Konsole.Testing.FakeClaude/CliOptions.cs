namespace Konsole.Testing.FakeClaude;

/// <summary>The part of the real CLI's command line FakeClaude understands; other flags are accepted and ignored.</summary>
public sealed record CliOptions(IReadOnlyList<string>? Tools, string? AppendSystemPrompt, string? Resume, string? Model, string? Error)
{
    private static readonly string[] DefaultTools = ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "WebFetch", "WebSearch"];

    /// <summary>The tools a turn's <c>init</c> lists: all of them, or what <c>--tools</c> named (<c>""</c>: none).</summary>
    public IReadOnlyList<string> ToolList => Tools ?? DefaultTools;

    public static CliOptions Parse(string[] args)
    {
        IReadOnlyList<string>? tools = null;
        string? append = null, resume = null, model = null, input = null, output = null;
        var print = false;
        var verbose = false;
        for (var i = 0; i < args.Length; i++)
        {
            // --name=value as the real CLI (commander) takes it, as well as --name value.
            var (name, inline) = args[i].StartsWith("--", StringComparison.Ordinal) && args[i].IndexOf('=') is > 2 and var eq
                ? (args[i][..eq], args[i][(eq + 1)..])
                : (args[i], null);
            string? Next() => inline ?? (i + 1 < args.Length ? args[++i] : null);
            switch (name)
            {
                case "-p" or "--print": print = true; break;
                case "--verbose": verbose = true; break;
                case "--input-format": input = Next(); break;
                case "--output-format": output = Next(); break;
                case "--tools": tools = (Next() ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "--append-system-prompt": append = Next(); break;
                case "--resume" or "-r": resume = Next(); break;
                case "--model": model = Next(); break;
            }
        }
        var error = !print ? "FakeClaude only runs in print mode (-p)"
            : input != "stream-json" || output != "stream-json" ? "FakeClaude needs --input-format stream-json --output-format stream-json"
            : !verbose ? "When using --print, --output-format=stream-json requires --verbose" // the real CLI's refusal, word for word
            : null;
        return new CliOptions(tools, append, resume, model, error);
    }
}
