using System.Text.Json;
using Akka.Actor;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>Accounts and sessions on FakeClaude, and reading what a session's prompts produce.</summary>
public abstract class SessionSpec(ITestOutputHelper output, int accounts, string? config = null) : KonsoleSpec(output, accounts, config)
{
    protected const string Long = "[[chunks:1000:50]]";
    protected static readonly TimeSpan Ask = TimeSpan.FromSeconds(10);
    protected IActorRef _router = null!;
    protected IActorRef _sessions = null!;

    protected async Task StartAsync(string extraHocon = "")
    {
        var settings = Sandbox.Settings(FakeClaudeCli.Path, extraHocon: extraHocon);
        _router = this.StartAccounts(settings);
        await this.WaitUntilWarmAsync(_router);
        _sessions = this.StartSessions(_router, settings);
    }

    /// <summary>The sessions stop first, so nothing the accounts say as they stop reaches them: as if the host died.</summary>
    protected async Task CrashAsync()
    {
        await _sessions.GracefulStop(Ask);
        await _router.GracefulStop(Ask);
    }

    /// <summary>Accounts and sessions again, on the same journal (as a database is shared by two runs of the host).</summary>
    protected async Task RestartAsync(string extraHocon = "")
    {
        var settings = Sandbox.Settings(FakeClaudeCli.Path, extraHocon: extraHocon);
        _router = await UnderTheSameNameAsync(() => this.StartAccounts(settings));
        await this.WaitUntilWarmAsync(_router);
        _sessions = await UnderTheSameNameAsync(() => this.StartSessions(_router, settings));
    }

    /// <summary>
    /// A stopped actor's name is free once its parent has heard of its end, which may come after <c>GracefulStop</c> has
    /// returned (Akka orders the two notices in no way): until then starting one under that name is refused.
    /// </summary>
    private static async Task<IActorRef> UnderTheSameNameAsync(Func<IActorRef> start)
    {
        var deadline = DateTime.UtcNow + Ask;
        while (true)
        {
            try
            {
                return start();
            }
            catch (InvalidActorNameException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }
        }
    }

    protected async Task<IReadOnlyList<SessionEvent>> PromptAsync(string session, string text)
    {
        var accepted = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, text), Ask);
        return await accepted.Events.ReadToEndAsync(TurnTimeout);
    }

    protected static async Task<SessionEvent> FirstAsync(PromptAccepted prompt, string type)
    {
        using var cancel = new CancellationTokenSource(TurnTimeout);
        while (true)
        {
            var item = await prompt.Events.ReadAsync(cancel.Token);
            if (item.Type == type)
                return item;
        }
    }

    /// <summary>The account a worker session is assigned to, once its session has heard (the router answers it after its creation).</summary>
    protected async Task<string> AssignedAccountAsync(string session)
    {
        string? account = null;
        await AwaitAssertAsync(async () => Assert.NotNull(account = (await _sessions.Ask<SessionInfo>(new GetSession(session), Ask)).AccountId), Ask);
        return account!;
    }

    protected Task<RoleRouterProtocol.AccountsView> AccountsAsync() =>
        _router.Ask<RoleRouterProtocol.AccountsView>(RoleRouterProtocol.GetAccounts.Instance, Ask);

    protected Task<RoleRouterProtocol.RoleStatus> RoleStatusAsync() =>
        _router.Ask<RoleRouterProtocol.RoleStatus>(RoleRouterProtocol.GetRoleStatus.Instance, Ask);

    protected static string? ResultText(IReadOnlyList<SessionEvent> events) =>
        JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("result").GetString();
}
