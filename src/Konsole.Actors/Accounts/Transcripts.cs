namespace Konsole.Actors.Accounts;

/// <summary>
/// Conversation transcripts, which the CLI files as <c>&lt;config dir&gt;/projects/&lt;cwd slug&gt;/&lt;session id&gt;.jsonl</c>.
/// A conversation moves to another account by copying its transcript into that account's config dir.
/// </summary>
public static class Transcripts
{
    /// <summary>
    /// Makes the transcript of <paramref name="sessionId"/> available under <paramref name="toConfigDir"/>,
    /// copying it (atomically) from <paramref name="fromConfigDir"/> when that differs. Returns false when
    /// no transcript can be found, so the conversation cannot be resumed.
    /// </summary>
    public static bool Prepare(string sessionId, string fromConfigDir, string toConfigDir)
    {
        var source = Find(sessionId, fromConfigDir);
        if (Path.GetFullPath(fromConfigDir) == Path.GetFullPath(toConfigDir) || source is null)
            return source is not null || Find(sessionId, toConfigDir) is not null;

        var relative = Path.GetRelativePath(fromConfigDir, source);
        var target = Path.Combine(toConfigDir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var temporary = $"{target}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.Copy(source, temporary);
            File.Move(temporary, target, overwrite: true);
        }
        catch
        {
            File.Delete(temporary); // a copy cut short (a full disk) is not left behind for each later try
            throw;
        }
        return true;
    }

    private static string? Find(string sessionId, string configDir)
    {
        var projects = Path.Combine(configDir, "projects");
        if (!Directory.Exists(projects) || sessionId.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || sessionId.Contains(".."))
            return null;
        return Directory.EnumerateDirectories(projects)
            .Select(project => Path.Combine(project, sessionId + ".jsonl"))
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .FirstOrDefault();
    }
}
