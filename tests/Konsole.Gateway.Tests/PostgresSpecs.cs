using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>The durable state in PostgreSQL instead of the embedded SQLite file, by configuration alone, on a real server.</summary>
public sealed class PostgresSpecs(ITestOutputHelper output, PostgresServer postgres) : GatewaySpec(output), IClassFixture<PostgresServer>
{
    protected override string ExtraHocon =>
        $"konsole.persistence {{ provider = \"PostgreSQL.15\", connection-string = \"{postgres.ConnectionString}\" }}";

    [Fact]
    public async Task Roles_sessions_their_models_and_conversations_are_back_after_a_restart()
    {
        Assert.Equal(HttpStatusCode.OK, (await Client.PostAsync("/api/accounts/switch", null)).StatusCode);
        var created = await Client.PostAsJsonAsync("/api/session", new { type = "full", model = "fake-opus" });
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("sessionId").GetString()!;
        Assert.StartsWith("echo: Remember 42", ResultText(await RunAsync($"/api/session/{id}/prompt", "Remember 42")));

        await RestartHostAsync();

        var accounts = await GetJsonAsync("/api/accounts");
        Assert.Equal(["quickturn", "dashboard"], accounts.GetProperty("accounts").EnumerateArray().Select(a => a.GetProperty("role").GetString()));
        var session = await GetJsonAsync($"/api/session/{id}");
        Assert.Equal(("full", "fake-opus", 1), (session.GetProperty("type").GetString(), session.GetProperty("model").GetString(), session.GetProperty("turns").GetInt32()));
        var next = await RunAsync($"/api/session/{id}/prompt", "What number?");
        Assert.StartsWith("echo: What number? [history: Remember 42", ResultText(next));
        Assert.Equal("fake-opus", Field(next.Single(e => e.Event == "system"), "model"));
        // Where it was kept: in PostgreSQL, and no SQLite file beside it.
        Assert.True(await postgres.ScalarAsync("SELECT count(*) FROM journal WHERE persistence_id IN ('konsole-roles', 'konsole-sessions')") >= 2);
        Assert.True(await postgres.ScalarAsync($"SELECT count(*) FROM journal WHERE persistence_id = 'session-{id}'") > 0);
        Assert.False(File.Exists(Path.Combine(Sandbox.DataDir, "konsole.db")));

        // Closed, its journal goes (the plugin keeps the last row, marked deleted, for the sequence numbers).
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync($"/api/session/{id}")).StatusCode);
        var deadline = DateTime.UtcNow + Timeout;
        while (await postgres.ScalarAsync($"SELECT count(*) FROM journal WHERE persistence_id = 'session-{id}' AND NOT deleted") > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the closed session's journal was not deleted");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task A_plugin_that_cannot_be_created_is_logged_without_the_databases_password()
    {
        // A bad value in the akka section the plugin reads: Akka logs the arguments of an actor it cannot create, the plugin's HOCON.
        var log = new StringWriterOutput();
        using var own = KonsoleSandbox.Create(1);
        await using var host = await GatewayHost.StartAsync(own.Hocon(FakeClaudeCli.Path, extraHocon: """
            akka.persistence.journal.sql.table-mapping = postgres
            konsole.persistence { provider = "PostgreSQL.15", connection-string = "Host=127.0.0.1;Port=1;Username=k;Password=pg-secret-5150;Database=k" }
            """), log);

        var deadline = DateTime.UtcNow + Timeout;
        while (!log.Text.Contains("akka.persistence.journal.sql.postgres does not exist", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the plugin's failure was not logged:\n{log.Text}");
            await Task.Delay(50);
        }
        Assert.DoesNotContain("pg-secret-5150", log.Text);
    }
}
