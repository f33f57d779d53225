using System.Text.Json;
using System.Text.RegularExpressions;

namespace Konsole.Testing.FakeClaude;

/// <summary>
/// A conversation's user prompts, filed where the real CLI files transcripts:
/// <c>$CLAUDE_CONFIG_DIR/projects/&lt;cwd, non-alphanumerics as -&gt;/&lt;session id&gt;.jsonl</c>, so that
/// <c>--resume</c> and copying a transcript to another account behave as they do with the real CLI.
/// </summary>
public sealed partial class Transcript
{
    private readonly string _projectDir;
    private readonly List<string> _prompts = [];

    private Transcript(string projectDir, string sessionId)
    {
        _projectDir = projectDir;
        SessionId = sessionId;
    }

    public string SessionId { get; }

    public IReadOnlyList<string> Prompts => _prompts;

    private string FilePath => Path.Combine(_projectDir, SessionId + ".jsonl");

    public static Transcript New(string configDir, string cwd) => new(ProjectDir(configDir, cwd), Guid.NewGuid().ToString());

    /// <summary>The conversation filed under <paramref name="sessionId"/>, or null when there is none.</summary>
    public static Transcript? Load(string configDir, string cwd, string sessionId)
    {
        var transcript = new Transcript(ProjectDir(configDir, cwd), sessionId);
        if (sessionId.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || !File.Exists(transcript.FilePath))
            return null;
        foreach (var line in File.ReadLines(transcript.FilePath))
        {
            if (line.Length > 0 && JsonDocument.Parse(line).RootElement.GetProperty("prompt").GetString() is { } prompt)
                transcript._prompts.Add(prompt);
        }
        return transcript;
    }

    public void Append(string prompt)
    {
        _prompts.Add(prompt);
        Directory.CreateDirectory(_projectDir);
        File.AppendAllText(FilePath, JsonSerializer.Serialize(new { type = "user", prompt }) + "\n");
    }

    private static string ProjectDir(string configDir, string cwd) => Path.Combine(configDir, "projects", NonAlphanumeric().Replace(cwd, "-"));

    [GeneratedRegex("[^A-Za-z0-9]")]
    private static partial Regex NonAlphanumeric();
}
