using System.Diagnostics;
using Npgsql;

namespace Konsole.Gateway.Tests;

/// <summary>
/// A PostgreSQL server of its own for a test class: Debian's <c>postgresql</c> package (installed with apt-get when it is
/// missing and this runs as root), a new cluster in a temporary directory, on a Unix socket there; stopped and deleted
/// afterwards. As root the server runs as the package's <c>postgres</c> user (PostgreSQL refuses to run as root).
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);
    private readonly string _root = Directory.CreateTempSubdirectory("konsole-pg-").FullName;
    private string _bin = "";

    public string ConnectionString { get; private set; } = "";

    private string Data => Path.Combine(_root, "data");

    private static bool IsRoot => Environment.UserName == "root";

    public async Task InitializeAsync()
    {
        _bin = FindBin() ?? await InstallAsync();
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

    private static async Task<string> InstallAsync()
    {
        if (!IsRoot || !File.Exists("/usr/bin/apt-get"))
            throw new InvalidOperationException("these tests need a PostgreSQL server's programs (initdb, pg_ctl): on Debian, apt-get install postgresql");
        await RunAsync("apt-get", ["update"]);
        await RunAsync("apt-get", ["install", "-y", "--no-install-recommends", "postgresql"]);
        return FindBin() ?? throw new InvalidOperationException("apt-get installed postgresql, but no /usr/lib/postgresql/*/bin/initdb");
    }

    private Task RunAsPostgresAsync(string program, IReadOnlyList<string> arguments) =>
        IsRoot
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, program), .. arguments])
            : RunAsync(Path.Combine(_bin, program), arguments);

    private static async Task RunAsync(string program, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(Timeout);
        await process.WaitForExitAsync(cancel.Token);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await output}{await errors}");
    }
}
