using System.Diagnostics;
using Akka.Actor;
using Konsole.Actors.Prompts;
using Konsole.Actors.Routing;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Integration.Tests;

/// <summary>
/// The actors over the real Claude Code CLI (npm @anthropic-ai/claude-code, pinned; installed on first
/// use) talking to the project's fake Messages API on loopback. Two accounts, alpha and beta, each
/// with OAuth credentials of its own.
/// </summary>
[Collection(RealClaudeCollection.Name)]
public sealed class RealClaudeSpecs(ITestOutputHelper output, RealClaudeFixture cli) : KonsoleSpec(output, accounts: 2), IAsyncLifetime
{
    private static readonly TimeSpan Turn = TimeSpan.FromSeconds(60);
    private FakeMessagesApi _api = null!;
    private IActorRef _router = null!;
    private EnvironmentScope? _hostCredentials;

    public async Task InitializeAsync()
    {
        // Every CLI inherits these from the test process; an account's process must never see them.
        _hostCredentials = EnvironmentScope.Set(
            ("CLAUDE_CODE_OAUTH_TOKEN", HostToken), ("ANTHROPIC_API_KEY", "sk-ant-api03-host-key"), ("CLAUDECODE", "1"));
        _api = await FakeMessagesApi.StartAsync();
        _router = this.StartAccounts(Sandbox.Settings(cli.Path, FakeMessagesApi.CliEnvironment(_api.BaseUrl)));
        await this.WaitUntilWarmAsync(_router, Turn);
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        _hostCredentials?.Dispose();
    }

    private const string HostToken = "sk-ant-oat01-host-token-must-not-leak";

    [Fact]
    public async Task Each_accounts_requests_carry_only_its_own_token()
    {
        var alpha = await RouteAsync(Role.Dashboard, "from-alpha dashboard");
        var beta = await RouteAsync(Role.QuickTurn, "from-beta quick");
        await _router.Ask<RolesChanged>(SwapRoles.Instance, TimeSpan.FromSeconds(5));
        var betaFull = await RouteAsync(Role.Dashboard, "from-beta dashboard");

        Assert.All([alpha, beta, betaFull], t => Assert.False(t.Completed!.Result.IsError, t.Completed.Result.Raw));
        var requests = _api.Requests;
        Assert.NotEmpty(requests);
        Assert.All(requests, r => Assert.Null(r.ApiKey));
        Assert.All(requests.Where(r => r.LastUserText.Contains("from-alpha")), r => Assert.Equal($"Bearer {Sandbox.Accounts[0].AccessToken}", r.Authorization));
        Assert.All(requests.Where(r => r.LastUserText.Contains("from-beta")), r => Assert.Equal($"Bearer {Sandbox.Accounts[1].AccessToken}", r.Authorization));
        Assert.Equal(3, requests.Count(r => r.LastUserText.Contains("from-")));
        Assert.DoesNotContain(requests, r => r.Authorization?.Contains(HostToken) == true);
    }

    [Fact]
    public async Task A_second_hot_turn_remembers_the_first()
    {
        var first = await RouteAsync(Role.Dashboard, "Remember 42", "ui-1");
        var second = await RouteAsync(Role.Dashboard, "What number?", "ui-1", first.Completed!.Conversation);

        Assert.Equal(first.Completed.Conversation, second.Completed!.Conversation);
        var request = await _api.WaitForRequestAsync(r => r.LastUserText == "What number?", Turn);
        Assert.Contains("Remember 42", request.UserTexts);
        Assert.True(request.MessageCount > (await _api.WaitForRequestAsync(r => r.LastUserText == "Remember 42", Turn)).MessageCount);
    }

    [Fact]
    public async Task A_chat_turn_runs_with_zero_tools_and_without_the_previous_chat_turns_history()
    {
        await RouteAsync(Role.QuickTurn, "Remember 42");
        await RouteAsync(Role.QuickTurn, "What number?");

        var first = await _api.WaitForRequestAsync(r => r.LastUserText == "Remember 42", Turn);
        var second = await _api.WaitForRequestAsync(r => r.LastUserText == "What number?", Turn);
        Assert.Equal(0, first.ToolCount);
        Assert.Equal(0, second.ToolCount);
        Assert.DoesNotContain("Remember 42", second.UserTexts);
        Assert.Equal(first.MessageCount, second.MessageCount);
        Assert.Contains("Answer concisely", second.SystemText);
        // While a dashboard turn gets the full tool set.
        await RouteAsync(Role.Dashboard, "tools?");
        Assert.True((await _api.WaitForRequestAsync(r => r.LastUserText == "tools?", Turn)).ToolCount > 0);
    }

    [Fact]
    public async Task A_kill_9_mid_turn_gives_process_crashed_then_the_next_prompt_is_served_in_the_resumed_conversation()
    {
        var first = await RouteAsync(Role.Dashboard, "Remember 42", "ui-1");
        var conversation = first.Completed!.Conversation;
        var (slow, caller) = NewPrompt("[[api-slow:400:50]] a long answer", "ui-1", conversation);
        _router.Tell(new RoutePrompt(Role.Dashboard, slow));
        await caller.FishForMessageAsync(m => m is TurnOutput { Frame.IsInit: true }, Turn);
        await _api.WaitForRequestAsync(r => r.LastUserText.Contains("a long answer"), Turn);
        var pid = await FullProcessIdAsync();

        Process.GetProcessById(pid).Kill(); // SIGKILL

        var crashed = await caller.ReceiveTurnAsync(Turn);
        Assert.Equal(TurnErrorCodes.ProcessCrashed, crashed.Failed?.Code);
        var next = await RouteAsync(Role.Dashboard, "What number?", "ui-1", conversation);
        Assert.False(next.Completed!.Result.IsError, next.Completed.Result.Raw);
        Assert.Equal(conversation!.SessionId, next.Completed.Conversation!.SessionId);
        Assert.Contains("Remember 42", (await _api.WaitForRequestAsync(r => r.LastUserText == "What number?", Turn)).UserTexts);
    }

    [Fact]
    public async Task An_interrupt_right_after_the_prompt_ends_its_turn_without_killing_the_process_which_serves_the_next()
    {
        var pid = await FullProcessIdAsync();
        var (prompt, caller) = NewPrompt("[[api-slow:400:50]] interrupted at once");

        _router.Tell(new RoutePrompt(Role.Dashboard, prompt));
        _router.Tell(new InterruptPrompt(prompt.PromptId)); // the CLI may not have started it yet

        var turn = await caller.ReceiveTurnAsync(Turn);
        // Still in the CLI's queue: dropped there, this CLI printing its command_lifecycle "cancelled" at once, before the
        // control_response (checked by hand, 2026-12-01: the prompt and the interrupt written together). Through the actors the CLI
        // has taken the prompt by then in every run so far, and the turn ends with its error_during_execution result.
        if (turn.Failed is { } failed)
            Assert.Equal(TurnErrorCodes.Interrupted, failed.Code);
        else
            Assert.Equal("error_during_execution", turn.Completed!.Result.Subtype);
        var next = await RouteAsync(Role.Dashboard, "after the interrupt");
        Assert.False(next.Completed!.Result.IsError, next.Completed.Result.Raw);
        Assert.Equal(pid, await FullProcessIdAsync()); // not killed after interrupt-timeout for want of an end
    }

    [Fact]
    public async Task After_shutdown_no_CLI_process_remains()
    {
        var pids = (await _router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(5)))
            .Accounts.SelectMany(a => a.Status.Processes).Select(p => p.ProcessId!.Value).ToList();
        var processes = pids.Select(Process.GetProcessById).ToList();
        Assert.Equal(4, processes.Count);
        Assert.All(processes, p => Assert.Contains("claude", p.MainModule?.FileName ?? p.ProcessName));

        await Sys.Terminate();

        Assert.All(processes, p => Assert.True(p.HasExited, $"pid {p.Id} still running"));
        Assert.Empty(LiveCliProcesses);
    }

    /// <summary>The dashboard account's (alpha's) full process.</summary>
    private async Task<int> FullProcessIdAsync() => (await _router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(5)))
        .Accounts[0].Status.Processes.Single(p => p.Mode == ProcessMode.Full).ProcessId!.Value;

    private async Task<TurnRecord> RouteAsync(Role role, string text, string session = "ses-1", ConversationRef? conversation = null)
    {
        var (prompt, caller) = NewPrompt(text, session, conversation);
        _router.Tell(new RoutePrompt(role, prompt));
        var turn = await caller.ReceiveTurnAsync(Turn);
        Assert.True(turn.Completed is not null, $"'{text}' failed: {turn.Failed}");
        return turn;
    }
}
