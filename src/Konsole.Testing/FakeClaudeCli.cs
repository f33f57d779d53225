namespace Konsole.Testing;

/// <summary>
/// Where the FakeClaude program is: it is copied next to every assembly whose project references this harness's project.
/// Use it as <c>konsole.claude.path</c> to drive the actors without a Claude login (see the program's directives).
/// </summary>
public static class FakeClaudeCli
{
    private static readonly Lazy<string> Located = new(Locate);

    /// <summary>Its path; throws <see cref="FileNotFoundException"/> (each time it is asked) when it is not there.</summary>
    public static string Path => Located.Value;

    private static string Locate()
    {
        var path = System.IO.Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "FakeClaude.exe" : "FakeClaude");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"FakeClaude was not found at {path}: reference the Konsole.Testing project (a ProjectReference, which copies it to your output)", path);
    }
}
