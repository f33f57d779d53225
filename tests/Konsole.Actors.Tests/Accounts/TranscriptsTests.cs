using Konsole.Actors.Accounts;

namespace Konsole.Actors.Tests.Accounts;

public sealed class TranscriptsTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("konsole-transcripts-");

    public void Dispose() => _root.Delete(recursive: true);

    [Fact]
    public void A_copy_that_fails_leaves_no_partial_file_behind()
    {
        var from = Path.Combine(_root.FullName, "from");
        var to = Path.Combine(_root.FullName, "to");
        Directory.CreateDirectory(Path.Combine(from, "projects", "-work"));
        File.WriteAllText(Path.Combine(from, "projects", "-work", "s-1.jsonl"), "{}\n");
        Directory.CreateDirectory(Path.Combine(to, "projects", "-work", "s-1.jsonl")); // in the way: the copy cannot take its place

        Assert.ThrowsAny<IOException>(() => Transcripts.Prepare("s-1", from, to));

        Assert.Equal(["s-1.jsonl"], Directory.EnumerateFileSystemEntries(Path.Combine(to, "projects", "-work")).Select(Path.GetFileName));
    }
}
