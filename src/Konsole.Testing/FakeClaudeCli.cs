namespace Konsole.Testing;

/// <summary>
/// Where the FakeClaude program is: it is copied next to every assembly that references this harness.
/// Use it as <c>konsole.claude.path</c> to drive the actors without a Claude login (see the program's directives).
/// </summary>
public static class FakeClaudeCli
{
    public static string Path { get; } = Locate();

    private static string Locate()
    {
        var path = System.IO.Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "FakeClaude.exe" : "FakeClaude");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"FakeClaude was not found at {path}: reference Konsole.Testing from a project that builds it", path);
    }
}
