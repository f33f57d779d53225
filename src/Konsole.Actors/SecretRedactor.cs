using System.Text.RegularExpressions;

namespace Konsole.Actors;

/// <summary>Masks credentials in text that is about to be logged (CLI stderr, previews of odd output).</summary>
public static partial class SecretRedactor
{
    private static readonly string[] SecretNameParts = ["KEY", "TOKEN", "SECRET", "PASSWORD"];

    public static string Redact(string text) =>
        text.Contains("sk-ant-", StringComparison.Ordinal) || text.Contains("Bearer", StringComparison.OrdinalIgnoreCase)
            ? Secret().Replace(text, m => m.Groups["keep"].Value + "***")
            : text;

    /// <summary>
    /// Also masks the <paramref name="known"/> values wherever they appear: a credential need not look like one (a proxy's API key).
    /// </summary>
    public static string Redact(string text, IReadOnlyList<string> known)
    {
        foreach (var secret in known)
            text = text.Replace(secret, "***", StringComparison.Ordinal);
        return Redact(text);
    }

    /// <summary>
    /// The credentials a process is given: the values of its variables named as one (<c>ANTHROPIC_API_KEY</c>,
    /// <c>ANTHROPIC_AUTH_TOKEN</c>, <c>..._SECRET</c>, <c>..._PASSWORD</c>) or listed in <paramref name="alsoSecret"/> (an account's
    /// <c>api-key-env</c>), longest first so none is masked only in part.
    /// </summary>
    public static IReadOnlyList<string> SecretsIn(IReadOnlyDictionary<string, string?> environment, IEnumerable<string>? alsoSecret = null)
    {
        var listed = new HashSet<string>(alsoSecret ?? [], StringComparer.Ordinal);
        return environment
            .Where(v => v.Value is { Length: > 0 } && (listed.Contains(v.Key) || v.Key.ToUpperInvariant().Split('_').Intersect(SecretNameParts).Any()))
            .Select(v => v.Value!)
            .Distinct(StringComparer.Ordinal)
            .OrderByDescending(v => v.Length)
            .ToList();
    }

    /// <summary>
    /// <see cref="SecretsIn"/> of the environment a process the host starts runs with: the host's own, <paramref name="overrides"/>
    /// over it (null: removed).
    /// </summary>
    public static IReadOnlyList<string> SecretsInHostEnvironment(IReadOnlyDictionary<string, string?>? overrides = null, IEnumerable<string>? alsoSecret = null)
    {
        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(v => (string)v.Key, v => (string?)v.Value, StringComparer.Ordinal);
        foreach (var (name, value) in overrides ?? new Dictionary<string, string?>())
            environment[name] = value;
        return SecretsIn(environment, alsoSecret);
    }

    [GeneratedRegex(@"(?<keep>sk-ant-[a-z]{2,8}\d{0,2}-)[A-Za-z0-9_\-]+|(?<keep>Bearer\s+)[A-Za-z0-9_\-\.=+/]+", RegexOptions.IgnoreCase)]
    private static partial Regex Secret();
}
