using Konsole.Actors.Processes;

namespace Konsole.Actors.Tests.Processes;

public sealed class PosixTests
{
    [Fact]
    public void A_directory_is_synced_and_a_missing_one_says_so()
    {
        var directory = Directory.CreateTempSubdirectory("konsole-sync-");
        try
        {
            Assert.True(Posix.SyncDirectory(directory.FullName));
            Assert.False(Posix.SyncDirectory(Path.Combine(directory.FullName, "missing")));
        }
        finally
        {
            directory.Delete();
        }
    }
}
