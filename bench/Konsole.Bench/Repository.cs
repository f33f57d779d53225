namespace Konsole.Bench;

/// <summary>The checkout this program runs from: the first directory above it that holds Konsole.Actors.sln.</summary>
public static class Repository
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Konsole.Actors.sln")))
                return dir.FullName;
        }
        throw new DirectoryNotFoundException($"no Konsole.Actors.sln above {AppContext.BaseDirectory}: the benchmarks run from the repository");
    }
}
