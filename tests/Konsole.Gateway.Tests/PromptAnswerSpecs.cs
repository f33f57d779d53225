using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Akka.Actor;
using Konsole.Actors.Configuration;
using Konsole.Actors.Prompts;
using Konsole.Actors.Sessions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Gateway.Tests;

/// <summary>
/// How a prompt is answered when it ends before any output, and when its submission goes unanswered: the gateway's own
/// part, on an HttpContext of the test's. Through the whole host an accepted prompt fails before any output only by
/// chance of timing (say, an interrupt while its dispatch is confirmed): FakeClaude, as the CLI, prints as soon as it
/// reads a prompt. An ask times out only after the fixed 10 s, from actors that never answer.
/// </summary>
public sealed class PromptAnswerSpecs
{
    [Theory]
    [InlineData(TurnErrorCodes.Interrupted)]
    [InlineData(TurnErrorCodes.ProcessCrashed)]
    [InlineData(TurnErrorCodes.TurnTimeout)]
    public async Task A_prompt_taken_to_run_that_fails_before_any_output_gets_a_200_stream_ending_with_its_error(string code)
    {
        var (status, type, body) = await AnswerAsync(Error(code), "text/event-stream");

        Assert.Equal((200, "text/event-stream"), (status, type));
        Assert.Equal($"id: 1\nevent: error\ndata: {{\"code\":\"{code}\",\"message\":\"it ended\"}}\n\n", body);
    }

    [Theory]
    [InlineData(TurnErrorCodes.QueueFull, 429)]
    [InlineData(TurnErrorCodes.AccountUnavailable, 503)]
    [InlineData(TurnErrorCodes.SessionClosed, 409)]
    [InlineData(TurnErrorCodes.JournalUnavailable, 503)]
    public async Task A_prompt_refused_before_it_was_taken_to_run_gets_its_status(string code, int expected)
    {
        var (status, type, body) = await AnswerAsync(Error(code), "text/event-stream");

        Assert.Equal((expected, "application/problem+json"), (status, type));
        Assert.Equal(code, JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
    }

    [Theory]
    [InlineData(TurnErrorCodes.Interrupted, 409)]
    [InlineData(TurnErrorCodes.ProcessCrashed, 502)]
    [InlineData(TurnErrorCodes.TurnTimeout, 504)]
    [InlineData(TurnErrorCodes.ResultTooLarge, 502)]
    [InlineData(TurnErrorCodes.QueueFull, 429)]
    public async Task With_accept_json_every_error_is_its_problem(string code, int expected)
    {
        var (status, type, body) = await AnswerAsync(Error(code), "application/json");

        Assert.Equal((expected, "application/problem+json"), (status, type));
        Assert.Equal(code, JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_prompt_submission_not_answered_in_time_is_a_504_that_says_where_to_look_instead_of_inviting_a_retry()
    {
        var (session, sessionBody) = await ExecuteAsync(context => Task.FromResult(GatewayEndpoints.SubmitUnanswered(context, "ui-1")));
        var (quickTurn, quickTurnBody) = await ExecuteAsync(context => Task.FromResult(GatewayEndpoints.SubmitUnanswered(context, null)));

        Assert.Equal(504, session.Response.StatusCode);
        Assert.False(session.Response.Headers.ContainsKey("Retry-After"));
        var problem = JsonDocument.Parse(sessionBody).RootElement;
        Assert.Equal(GatewayEndpoints.GatewayTimeout, problem.GetProperty("code").GetString());
        Assert.Contains("may run it twice; GET /api/session/ui-1/events says whether it ran", problem.GetProperty("detail").GetString());
        Assert.Equal(504, quickTurn.Response.StatusCode);
        Assert.DoesNotContain("/api/session", JsonDocument.Parse(quickTurnBody).RootElement.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_role_change_not_answered_in_time_is_a_504_that_says_where_to_look_instead_of_inviting_a_retry()
    {
        var (change, body) = await ExecuteAsync(context => Task.FromResult(GatewayEndpoints.RoleChangeUnanswered(context)));

        // Before: 503 "try again", and a swap sent again undid the first once both applied.
        Assert.Equal(504, change.Response.StatusCode);
        Assert.False(change.Response.Headers.ContainsKey("Retry-After"));
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(GatewayEndpoints.GatewayTimeout, problem.GetProperty("code").GetString());
        Assert.Contains("may undo it; GET /api/accounts says which account has which role", problem.GetProperty("detail").GetString());
    }

    private static SessionEvent Error(string code) =>
        new(1, "p-1", "error", Encoding.UTF8.GetBytes($"{{\"code\":\"{code}\",\"message\":\"it ended\"}}"), EndsPrompt: true);

    /// <summary>The answer to a prompt whose only event is <paramref name="first"/> (its reader then completes, as a session's does).</summary>
    private static async Task<(int Status, string? Type, string Body)> AnswerAsync(SessionEvent first, string accept)
    {
        var events = Channel.CreateUnbounded<SessionEvent>();
        events.Writer.TryWrite(first);
        events.Writer.TryComplete();
        var (context, body) = await ExecuteAsync(context =>
        {
            context.Request.Headers.Accept = accept;
            return PromptStreams.AnswerAsync(context, ActorRefs.Nobody, new PromptAccepted("ui-1", "p-1", "sub-1", events.Reader), quickTurn: false);
        });
        return (context.Response.StatusCode, context.Response.ContentType?.Split(';')[0], body);
    }

    private static async Task<(HttpContext Context, string Body)> ExecuteAsync(Func<HttpContext, Task<IResult>> answer)
    {
        var body = new MemoryStream();
        var context = new DefaultHttpContext
        {
            RequestServices = new ServiceCollection().AddLogging().AddSingleton<IHostApplicationLifetime, Running>()
                .AddSingleton(KonsoleConfig.Parse("").Settings).BuildServiceProvider(),
        };
        context.Response.Body = body;
        await (await answer(context)).ExecuteAsync(context);
        return (context, Encoding.UTF8.GetString(body.ToArray()));
    }

    private sealed class Running : IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;
        public CancellationToken ApplicationStopping => CancellationToken.None;
        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication()
        {
        }
    }
}
