using System.Text.Json;
using System.Threading.Channels;
using Akka.Actor;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using Konsole.Actors.Routing;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Sessions;

/// <summary>
/// One user session: its conversation (which it hands to each of its prompts, so the conversation follows the
/// session from account to account), its numbered events in a bounded replay buffer, and the subscribers
/// reading them. It is the caller of its prompts: their replies become its events. A subscriber's reader is
/// unbounded, so a slow client never loses events nor slows a turn down; what it has not read waits in its reader.
/// </summary>
public sealed class SessionActor : ReceiveActor
{
    private readonly string _id;
    private readonly SessionType _type;
    private readonly IActorRef _router;
    private readonly bool _closeWhenIdle;
    private readonly EventLog _events;
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal);

    // Prompts not ended yet, and for each a result line waiting for the turn's end (TurnCompleted) to close it.
    private readonly Dictionary<string, CliFrame?> _inFlight = new(StringComparer.Ordinal);
    private ConversationRef? _conversation;
    private string? _accountId;
    private int _turns;
    private int _subscriptionIds;

    /// <param name="closeWhenIdle">Stop once the first prompt has ended (a quick turn's session).</param>
    public SessionActor(string id, SessionType type, IActorRef router, int replayBuffer, bool closeWhenIdle)
    {
        _id = id;
        _type = type;
        _router = router;
        _closeWhenIdle = closeWhenIdle;
        _events = new EventLog(replayBuffer);

        Receive<SubmitPrompt>(m => Submit(m.Text));
        Receive<SubmitQuickTurn>(m => Submit(m.Text));
        Receive<FollowEvents>(m =>
        {
            var subscription = Subscribe(promptId: null);
            foreach (var item in _events.After(m.After))
                subscription.Writer.TryWrite(item);
            Sender.Tell(new EventsFollowed(_id, subscription.Id, _events.FirstAvailable, subscription.Reader));
        });
        Receive<Unfollow>(m =>
        {
            if (_subscriptions.Remove(m.SubscriptionId, out var subscription))
                subscription.Writer.TryComplete();
        });
        Receive<InterruptSession>(_ =>
        {
            foreach (var promptId in _inFlight.Keys)
                _router.Tell(new RoleRouterProtocol.InterruptPrompt(promptId));
            Sender.Tell(new SessionInterrupted(_id, _inFlight.Count));
        });
        Receive<CloseSession>(_ =>
        {
            foreach (var promptId in _inFlight.Keys.ToList())
            {
                _router.Tell(new RoleRouterProtocol.InterruptPrompt(promptId));
                Append(promptId, "error", Error(TurnErrorCodes.SessionClosed, $"session {_id} was closed"), endsPrompt: true);
            }
            if (_type == SessionType.Worker)
                _router.Tell(new RoleRouterProtocol.CloseWorker(_id));
            Sender.Tell(new SessionClosed(_id));
            Context.Stop(Self);
        });
        Receive<GetSession>(_ => Sender.Tell(Info()));
        Receive<RoleRouterProtocol.WorkerAssigned>(m => _accountId = m.AccountId);

        Receive<PromptQueued>(m =>
        {
            _accountId ??= m.AccountId;
            Append(m.PromptId, "queued", JsonSerializer.Serialize(new { position = m.Position, accountId = m.AccountId }), endsPrompt: false);
        });
        Receive<TurnOutput>(m => OnOutput(m.PromptId, m.Frame));
        Receive<TurnCompleted>(m =>
        {
            if (!_inFlight.Remove(m.PromptId, out var result))
                return;
            _turns++;
            _accountId = m.AccountId;
            if (m.Conversation is not null)
                _conversation = m.Conversation;
            Append(m.PromptId, m.Result.Type!, (result ?? m.Result).Raw, endsPrompt: true);
            CloseIfDone();
        });
        Receive<TurnFailed>(m =>
        {
            if (!_inFlight.Remove(m.PromptId, out var result))
                return;
            if (result is not null)
                Append(m.PromptId, result.Type!, result.Raw, endsPrompt: false); // e.g. a turn the watchdog interrupted
            Append(m.PromptId, "error", Error(m.Code, m.Message, m.RetryAfter), endsPrompt: true);
            CloseIfDone();
        });
    }

    public static Props Props(string id, SessionType type, IActorRef router, int replayBuffer, bool closeWhenIdle = false) =>
        Akka.Actor.Props.Create(() => new SessionActor(id, type, router, replayBuffer, closeWhenIdle));

    protected override void PreStart()
    {
        if (_type == SessionType.Worker)
            _router.Tell(new RoleRouterProtocol.AssignWorker(_id));
    }

    protected override void PostStop()
    {
        foreach (var subscription in _subscriptions.Values)
            subscription.Writer.TryComplete();
    }

    private void Submit(string text)
    {
        var prompt = new Prompt(Prompt.NewId(), _id, text, _conversation, Self);
        var subscription = Subscribe(prompt.PromptId);
        _inFlight[prompt.PromptId] = null;
        _router.Tell(_type switch
        {
            SessionType.Full => new RoleRouterProtocol.RoutePrompt(Role.Dashboard, prompt),
            SessionType.Chat => new RoleRouterProtocol.RoutePrompt(Role.QuickTurn, prompt),
            _ => new RoleRouterProtocol.RouteWorkerPrompt(prompt),
        });
        Sender.Tell(new PromptAccepted(_id, prompt.PromptId, subscription.Id, subscription.Reader));
    }

    private void OnOutput(string promptId, CliFrame frame)
    {
        if (!_inFlight.TryGetValue(promptId, out var pendingResult))
            return;
        if (pendingResult is not null)
            Append(promptId, pendingResult.Type!, pendingResult.Raw, endsPrompt: false); // another result came: that one did not end the turn
        if (frame.IsResult)
            _inFlight[promptId] = frame; // ends the prompt with TurnCompleted, which follows it
        else
        {
            _inFlight[promptId] = null;
            Append(promptId, frame.Type ?? "unknown", frame.Raw, endsPrompt: false);
        }
    }

    private void Append(string promptId, string type, string data, bool endsPrompt)
    {
        var item = _events.Append(promptId, type, data, endsPrompt);
        foreach (var subscription in _subscriptions.Values.ToList())
        {
            if (subscription.PromptId is not null && subscription.PromptId != promptId)
                continue;
            subscription.Writer.TryWrite(item);
            if (endsPrompt && subscription.PromptId is not null)
            {
                subscription.Writer.TryComplete();
                _subscriptions.Remove(subscription.Id);
            }
        }
    }

    private void CloseIfDone()
    {
        if (_closeWhenIdle && _inFlight.Count == 0)
            Context.Stop(Self);
    }

    private Subscription Subscribe(string? promptId)
    {
        var channel = Channel.CreateUnbounded<SessionEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var subscription = new Subscription($"sub-{++_subscriptionIds}", promptId, channel.Writer, channel.Reader);
        _subscriptions[subscription.Id] = subscription;
        return subscription;
    }

    private SessionInfo Info() => new(_id, _type, _accountId, _inFlight.Count > 0 ? "busy" : "idle",
        _conversation?.SessionId, _turns, _events.LastId);

    private static string Error(string code, string message, TimeSpan? retryAfter = null) => retryAfter is { } wait
        ? JsonSerializer.Serialize(new { code, message, retryAfter = (long)Math.Ceiling(wait.TotalSeconds) })
        : JsonSerializer.Serialize(new { code, message });

    /// <param name="PromptId">Only this prompt's events, ending with its last; null: every event of the session.</param>
    private sealed record Subscription(string Id, string? PromptId, ChannelWriter<SessionEvent> Writer, ChannelReader<SessionEvent> Reader);
}
