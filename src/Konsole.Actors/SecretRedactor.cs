using System.Text.RegularExpressions;

namespace Konsole.Actors;

/// <summary>Masks credentials in text that is about to be logged (CLI stderr, previews of odd output).</summary>
public static partial class SecretRedactor
{
    public static string Redact(string text) =>
        text.Contains("sk-ant-", StringComparison.Ordinal) || text.Contains("Bearer", StringComparison.OrdinalIgnoreCase)
            ? Secret().Replace(text, m => m.Groups["keep"].Value + "***")
            : text;

    [GeneratedRegex(@"(?<keep>sk-ant-[a-z]{2,8}\d{0,2}-)[A-Za-z0-9_\-]+|(?<keep>Bearer\s+)[A-Za-z0-9_\-\.=+/]+", RegexOptions.IgnoreCase)]
    private static partial Regex Secret();
}
