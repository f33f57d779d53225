using Konsole.Actors.Configuration;

namespace Konsole.Host;

/// <summary>
/// One host per data dir: a second would take the first one's CLI processes for orphans of a crash (their pid records are
/// in the data dir) and end them, and write the same journal. Held, as an exclusive lock on a file, for the process's life.
/// </summary>
public static class DataDirLock
{
    public static FileStream Acquire(string dataDir)
    {
        var path = Path.Combine(dataDir, "konsole.lock");
        try
        {
            Directory.CreateDirectory(dataDir);
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw new KonsoleConfigException(
                $"another konsole host runs on the data dir {dataDir} (konsole.data-dir); stop it first, or give this one a data dir of its own");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KonsoleConfigException($"konsole.data-dir: cannot write to {dataDir} ({e.Message})");
        }
    }
}
