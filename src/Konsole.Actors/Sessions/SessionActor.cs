using System.Text.Json;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Konsole.Actors.Durability;
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
/// <para>
/// It journals what must survive a restart: its conversation, and each prompt's lifecycle (accepted, dispatched
/// before it reaches a CLI, ended before its last event is shown). A prompt's acceptance is written before the client
/// hears anything of it (its first event is <c>queued</c>, or output that follows the dispatch, both written first), so an
/// immediate dispatch writes acceptance and dispatch at once. After a restart a prompt accepted but never
/// dispatched runs; one dispatched but not ended is reported <c>interrupted</c> and never run again; event ids go on
/// above any handed out before. A quick turn's one-prompt session journals nothing.
/// </para>
/// </summary>
public sealed class SessionActor : ReceivePersistentActor
{
    private const long IdBlock = 1000;
    private const int SnapshotEvery = 200;

    private readonly string _id;
    private readonly SessionType _type;
    private readonly IActorRef _router;
    private readonly int _replayBuffer;
    private readonly long _replayBytes;
    private readonly bool _durable;
    private readonly string? _model;
    private readonly long _idsAbove;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly Queue<HeldEvent> _held = new(); // in order, waiting for their ids' reservation (see Append)

    // Prompts not ended, in the order they were accepted: their text, whether they were dispatched, and a result line waiting
    // for TurnCompleted to end them.
    private readonly OrderedDictionary<string, InFlight> _inFlight = new(StringComparer.Ordinal);
    private string? _lastSubmitted;
    private Exception? _fault;
    private EventLog _events;
    private ConversationRef? _conversation;
    private string? _accountId;
    private int _turns;
    private long _idsReservedUpTo;
    private long _idsRecordedUpTo; // the part of _idsReservedUpTo whose write has landed
    // Subscription ids are unique in the process, not in one actor: a client of the session before a restart ends its stream with
    // its id, which must not end one of the session started again.
    private static long _subscriptionIds;
    private bool _closing;
    private int _snapshotsSaving; // saves sent to the snapshot store and not answered yet
    private bool _deleteWanted; // closing, its writes landed: its journal and snapshots go once no snapshot save is on its way
    private int _deletesUnanswered; // closing, its journal's and snapshots' deletes sent: how many are not answered yet

    /// <param name="durable">Journal its state (false: a quick turn's session, which closes once its prompt has ended).</param>
    /// <param name="model">The model its turns run on; null: the account's.</param>
    /// <param name="idsAbove">The last event id it handed out before it stopped on a fault (its journal may have less).</param>
    /// <param name="replayBuffer">Events kept for replay, at most.</param>
    /// <param name="replayBytes">Bytes of events' data kept for replay, at most (the latest event is kept whatever its size).</param>
    public SessionActor(string id, SessionType type, IActorRef router, int replayBuffer, long replayBytes, bool durable, string? model,
        long idsAbove = 0)
    {
        _idsAbove = idsAbove;
        _id = id;
        _type = type;
        _router = router;
        _replayBuffer = replayBuffer;
        _replayBytes = replayBytes;
        _durable = durable;
        _model = model;
        _events = new EventLog(replayBuffer, replayBytes);
        if (!durable)
        {
            // It journals nothing and reads nothing back, so it stays off the database: even an empty recovery costs a
            // query there, and a burst of quick turns queued hundreds of them (max-concurrent-recoveries) before answering.
            JournalPluginId = PersistenceSetup.InMemoryJournalId;
            SnapshotPluginId = PersistenceSetup.InMemorySnapshotStoreId;
            _idsRecordedUpTo = long.MaxValue; // its ids are never handed out again: it has no restart
        }

        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is SessionSnapshot snapshot)
                Restore(snapshot);
        });
        Recover<PromptRecorded>(e => _inFlight[e.PromptId] = new InFlight(e.Text) { Recorded = true, Written = true });
        Recover<PromptDispatchRecorded>(e => { if (_inFlight.TryGetValue(e.PromptId, out var p)) p.Dispatched = true; });
        Recover<PromptEndRecorded>(Ended);
        Recover<WorkerAccountRecorded>(e => _accountId = e.AccountId);
        Recover<EventIdsReserved>(e => _idsReservedUpTo = e.UpTo);
        Recover<RecoveryCompleted>(_ => OnRecovered());

        Command<SubmitPrompt>(m => Submit(m.Text));
        Command<SubmitQuickTurn>(m => Submit(m.Text));
        Command<FollowEvents>(m =>
        {
            var subscription = Subscribe(promptId: null, replay: _events.After(m.After));
            Sender.Tell(new EventsFollowed(_id, subscription.Id, _events.FirstAvailable, subscription.Reader));
        });
        Command<Unfollow>(m =>
        {
            if (_subscriptions.Remove(m.SubscriptionId, out var subscription))
                subscription.Writer.TryComplete();
        });
        Command<InterruptSession>(_ =>
        {
            foreach (var promptId in _inFlight.Keys)
                _router.Tell(new RoleRouterProtocol.InterruptPrompt(promptId, Self));
            Sender.Tell(new SessionInterrupted(_id, _inFlight.Count));
        });
        Command<CloseSession>(_ => Close());
        Command<GiveUpReplay>(_ =>
        {
            if (_closing)
                return; // forgotten by its manager
            if (_inFlight.Count == 0)
                _events.Clear();
            Context.Parent.Tell(new ReplayHeld(_id, _events.Bytes, Running: _inFlight.Count > 0));
        });
        Command<GetSession>(_ => Sender.Tell(Info()));
        Command<RoleRouterProtocol.WorkerAssigned>(m =>
        {
            // Closing: its journal is being deleted, and a write after the delete would leave a row behind for a session of its id.
            if (m.AccountId != _accountId && !_closing)
                Record(new WorkerAccountRecorded(m.AccountId), e => _accountId = e.AccountId);
        });

        Command<DispatchRequested>(m =>
        {
            if (!_inFlight.TryGetValue(m.PromptId, out var prompt) || _closing)
            {
                Sender.Tell(new DispatchRefused(m.PromptId));
                return;
            }
            var account = Sender;
            IDurableEvent[] facts = prompt.Recorded
                ? [new PromptDispatchRecorded(m.PromptId)]
                : [new PromptRecorded(m.PromptId, prompt.Text), new PromptDispatchRecorded(m.PromptId)];
            prompt.Recorded = true;
            RecordAll(facts, e =>
            {
                if (e is not PromptDispatchRecorded)
                {
                    prompt.Written = true;
                    return;
                }
                prompt.Dispatched = true;
                if (_type != SessionType.Worker)
                    _accountId = m.AccountId; // a worker's is its home account, as recorded when assigned
                account.Tell(new DispatchConfirmed(m.PromptId));
            });
        });
        Command<PromptQueued>(m =>
        {
            if (!_inFlight.TryGetValue(m.PromptId, out var prompt))
                return;
            _accountId ??= m.AccountId;
            var queued = JsonSerializer.SerializeToUtf8Bytes(new { position = m.Position, accountId = m.AccountId });
            // The client hears of the prompt now: it must be on record first.
            OnceRecorded(m.PromptId, prompt, () => Append(m.PromptId, "queued", queued, endsPrompt: false));
        });
        Command<PromptNotStarted>(m =>
        {
            if (!_inFlight.TryGetValue(m.PromptId, out var prompt))
                return;
            // One recorded as dispatched (its process lost before it reached the CLI, or restarting on its conversation when the
            // drain's deadline passed) would be reported interrupted after the restart, not run: it ends so now, its client told
            // to send it again (else its stream stayed open, unended, until the web server's own shutdown timeout cut it).
            if (prompt.Dispatched)
            {
                OnFailed(new TurnFailed(m.PromptId, TurnErrorCodes.Interrupted,
                    "the host is stopping before this prompt reached the CLI; it is not run after the restart: send it again then"));
                return;
            }
            // Its client is told it runs after the restart: it must be on record for that (one a moving worker's router kept is not yet).
            OnceRecorded(m.PromptId, prompt, () => EndNotStarted(m.PromptId));
        });
        Command<TurnOutput>(m => OnOutput(m.PromptId, m.Frame));
        Command<TurnLineDropped>(m =>
        {
            if (Continuing(m.PromptId) is not null)
                Append(m.PromptId, "dropped", JsonSerializer.SerializeToUtf8Bytes(new { type = m.Type, bytes = m.Bytes, maxLineBytes = m.MaxLineBytes }),
                    endsPrompt: false);
        });
        Command<TurnCompleted>(m =>
        {
            if (!_inFlight.TryGetValue(m.PromptId, out var prompt))
                return;
            var conversation = m.Conversation is { } c ? new ConversationRecorded(c.SessionId, c.AccountId, c.ConfigDir) : null;
            Record(new PromptEndRecorded(m.PromptId, Completed: true, m.AccountId, conversation), e =>
            {
                Ended(e);
                Append(m.PromptId, m.Result.Type!, (prompt.Result ?? m.Result).Line, endsPrompt: true);
                CloseIfDone();
            });
        });
        Command<TurnFailed>(OnFailed);

        Command<SaveSnapshotSuccess>(m =>
        {
            _snapshotsSaving--;
            if (_closing)
            {
                DeleteAllOnceSaved(); // which deletes this one too
                return;
            }
            DeleteMessages(m.Metadata.SequenceNr);
            DeleteSnapshots(new SnapshotSelectionCriteria(m.Metadata.SequenceNr - 1));
        });
        Command<SaveSnapshotFailure>(m =>
        {
            _snapshotsSaving--;
            _log.Warning("Session {0}: a snapshot was not saved: {1}", _id, m.Cause.Message);
            DeleteAllOnceSaved();
        });
        // A closing session ends once its own deletes are answered, not at a trim's answer (after a snapshot, sent before them),
        // which would leave its rows for a session given its id later.
        Command<DeleteMessagesSuccess>(m => DeleteAnswered(m.ToSequenceNr >= LastSequenceNr));
        Command<DeleteMessagesFailure>(m =>
        {
            _log.Warning("Session {0}: its journal was not trimmed: {1}", _id, m.Cause.Message);
            DeleteAnswered(m.ToSequenceNr >= LastSequenceNr);
        });
        Command<DeleteSnapshotsSuccess>(m => DeleteAnswered(m.Criteria.MaxSequenceNr == long.MaxValue));
        Command<DeleteSnapshotsFailure>(m =>
        {
            _log.Warning("Session {0}: old snapshots were not deleted: {1}", _id, m.Cause.Message);
            DeleteAnswered(m.Criteria.MaxSequenceNr == long.MaxValue);
        });
    }

    public override string PersistenceId => $"session-{_id}";

    public override Recovery Recovery => _durable ? Recovery.Default : Recovery.None;

    public static Props Props(string id, SessionType type, IActorRef router, int replayBuffer, long replayBytes = long.MaxValue,
        bool durable = true, string? model = null, long idsAbove = 0) =>
        Akka.Actor.Props.Create(() => new SessionActor(id, type, router, replayBuffer, replayBytes, durable, model, idsAbove));

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        base.OnPersistFailure(cause, @event, sequenceNr);
        EndOnJournalFault(cause); // Akka stops the actor next; its manager starts it again from the journal
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        base.OnPersistRejected(cause, @event, sequenceNr);
        EndOnJournalFault(cause);
        Context.Stop(Self); // what it holds no longer matches its journal: start again from the journal
    }

    /// <summary>
    /// A write to the journal failed, so this actor's state is no longer known to be on record: every prompt's stream
    /// ends with <c>journal_unavailable</c>, running turns are interrupted, and the session is started again from its
    /// journal (where a prompt accepted but not dispatched runs, and a dispatched one is reported interrupted).
    /// </summary>
    private void EndOnJournalFault(Exception cause)
    {
        ReleaseAll(); // the ids its manager is told count what waited for the reservation
        // Before any client hears of it, so nothing more is sent here; with the ids its errors below take.
        Context.Parent.Tell(new SessionFaulted(_id, _events.LastId + _inFlight.Count));
        EndOnFault($"the session's journal failed ({cause.Message})", TurnErrorCodes.JournalUnavailable);
    }

    /// <summary>Ends every prompt's stream with an error and interrupts the running turns; the session starts again from its journal.</summary>
    private void EndOnFault(string what, string code)
    {
        _log.Error("Session {0}: {1}; the session restarts from its journal", _id, what);
        foreach (var promptId in _inFlight.Keys)
        {
            _router.Tell(new RoleRouterProtocol.InterruptPrompt(promptId, Self));
            Append(promptId, "error", Error(code,
                $"{what}; the session restarts from its journal: see /api/session/{_id}/events for this prompt's outcome"),
                endsPrompt: true);
        }
        _inFlight.Clear();
    }

    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception e)
        {
            _fault = e; // its parent stops it (see PostStop)
            throw;
        }
    }

    protected override void PostStop()
    {
        if (_fault is not null)
        {
            ReleaseAll();
            EndOnFault($"the session stopped on a fault ({_fault.Message})", TurnErrorCodes.Interrupted);
            Context.Parent.Tell(new SessionFaulted(_id, _events.LastId));
        }
        foreach (var subscription in _subscriptions.Values)
            subscription.Writer.TryComplete();
        base.PostStop();
    }

    private void OnRecovered()
    {
        // Ids handed out beyond what its journal has (a reservation written ahead, then the write failed) are not handed out again.
        _idsReservedUpTo = Math.Max(_idsReservedUpTo, _idsAbove);
        _events = new EventLog(_replayBuffer, _replayBytes, startAfter: _idsReservedUpTo);
        if (_durable)
        {
            // The first block is on record before any id of it is handed out (later ones are written ahead, see ReserveEventIds):
            // a host killed while it was on its way would hand out again ids a client saw.
            _idsReservedUpTo += IdBlock;
            Persist(new EventIdsReserved(_idsReservedUpTo), OnIdsRecorded);
        }
        if (_type == SessionType.Worker)
            _router.Tell(new RoleRouterProtocol.AssignWorker(_id, _accountId));
        foreach (var (promptId, prompt) in _inFlight.ToList())
        {
            if (prompt.Dispatched)
            {
                _log.Warning("Session {0}: prompt {1} was running when the host stopped; it is reported interrupted, not run again", _id, promptId);
                Record(new PromptEndRecorded(promptId, Completed: false, Error: TurnErrorCodes.Interrupted), e =>
                {
                    Ended(e);
                    Append(promptId, "error", Error(TurnErrorCodes.Interrupted,
                        "the host stopped during this turn; it was not run again (the CLI may have run tools)"), endsPrompt: true);
                });
            }
            else
            {
                _log.Info("Session {0}: prompt {1} was accepted before the host stopped; it runs now", _id, promptId);
                // Each after the one before, as when they were sent: they continue one conversation, in order, on one account.
                Route(NewPrompt(promptId, prompt.Text) with { After = _lastSubmitted });
                _lastSubmitted = promptId;
            }
        }
    }

    /// <summary>Takes a prompt; it goes on record with its first event (see the class summary).</summary>
    private void Submit(string text)
    {
        var promptId = Prompt.NewId();
        var after = _lastSubmitted is { } last && _inFlight.ContainsKey(last) ? last : null;
        _lastSubmitted = promptId;
        _inFlight[promptId] = new InFlight(text);
        var subscription = Subscribe(promptId);
        Route(NewPrompt(promptId, text) with { After = after });
        Sender.Tell(new PromptAccepted(_id, promptId, subscription.Id, subscription.Reader));
    }

    private Prompt NewPrompt(string promptId, string text) => new(promptId, _id, text, _conversation, Self, _durable, _model);

    private void Route(Prompt prompt) => _router.Tell(_type switch
    {
        SessionType.Full => new RoleRouterProtocol.RoutePrompt(Role.Dashboard, prompt),
        SessionType.Chat => new RoleRouterProtocol.RoutePrompt(Role.QuickTurn, prompt),
        _ => new RoleRouterProtocol.RouteWorkerPrompt(prompt),
    });

    private void Close()
    {
        _closing = true;
        ReleaseAll(); // its close is on record (its manager's): its ids are never handed out again
        foreach (var promptId in _inFlight.Keys.ToList())
        {
            _router.Tell(new RoleRouterProtocol.InterruptPrompt(promptId, Self));
            Append(promptId, "error", Error(TurnErrorCodes.SessionClosed, $"session {_id} was closed"), endsPrompt: true);
        }
        _inFlight.Clear();
        _router.Tell(new RoleRouterProtocol.ReleaseSession(_id));
        Sender.Tell(new SessionClosed(_id));
        foreach (var subscription in _subscriptions.Values)
            subscription.Writer.TryComplete();
        _subscriptions.Clear();
        if (!_durable)
        {
            Context.Stop(Self);
            return;
        }
        // Its journal goes with it, once the writes still on their way have landed (one landing after the delete would leave a
        // row behind); it stops once that is done.
        DeferAsync(_id, _ =>
        {
            _deleteWanted = true;
            DeleteAllOnceSaved();
        });
    }

    /// <summary>
    /// Deletes its journal and snapshots once no snapshot save is on its way: the store runs a save and a delete side by side,
    /// and a save landing after the delete would be a later session of its id's starting state.
    /// </summary>
    private void DeleteAllOnceSaved()
    {
        if (!_deleteWanted || _deletesUnanswered > 0 || _snapshotsSaving > 0)
            return;
        _deletesUnanswered = 2; // it stops once they are answered: never back to 0 before
        DeleteSnapshots(SnapshotSelectionCriteria.Latest);
        DeleteMessages(long.MaxValue);
    }

    private void DeleteAnswered(bool all)
    {
        if (all && _deletesUnanswered > 0 && --_deletesUnanswered == 0)
            Context.Stop(Self);
    }

    private void Ended(PromptEndRecorded e)
    {
        _inFlight.Remove(e.PromptId);
        if (e.Conversation is { } c) // a failed turn may have run to its end all the same (result_too_large)
            _conversation = new ConversationRef(c.ClaudeSessionId, c.AccountId, c.ConfigDir);
        if (!e.Completed)
            return;
        _turns++;
        _accountId = e.AccountId ?? _accountId;
    }

    /// <summary>Runs <paramref name="then"/> once the prompt's acceptance is on record: at once when it is, else after writing it.</summary>
    private void OnceRecorded(string promptId, InFlight prompt, Action then)
    {
        if (prompt.Recorded)
        {
            then();
            return;
        }
        prompt.Recorded = true;
        Record(new PromptRecorded(promptId, prompt.Text), _ =>
        {
            prompt.Written = true;
            then();
        });
    }

    private void OnFailed(TurnFailed m)
    {
        if (!_inFlight.TryGetValue(m.PromptId, out var prompt))
            return;
        if (!prompt.Recorded)
        {
            // Refused before anyone heard of it (queue_full, ...): nothing on record to end.
            _inFlight.Remove(m.PromptId);
            Append(m.PromptId, "error", Error(m.Code, m.Message, m.RetryAfter), endsPrompt: true);
            CloseIfDone();
            return;
        }
        var conversation = m.Conversation is { } c ? new ConversationRecorded(c.SessionId, c.AccountId, c.ConfigDir) : null;
        Record(new PromptEndRecorded(m.PromptId, Completed: false, m.Conversation?.AccountId, conversation, m.Code), e =>
        {
            Ended(e);
            // A result held back (the CLI's, of a turn the watchdog interrupted) is not sent: a prompt ends with one of the two.
            Append(m.PromptId, "error", Error(m.Code, m.Message, m.RetryAfter), endsPrompt: true);
            CloseIfDone();
        });
    }

    /// <summary>Ends the prompt's own event streams with <see cref="PromptNotStartedException"/> (see <see cref="PromptNotStarted"/>).</summary>
    private void EndNotStarted(string promptId)
    {
        foreach (var subscription in _subscriptions.Values.Where(s => s.PromptId == promptId).ToList())
        {
            _subscriptions.Remove(subscription.Id);
            subscription.Writer.TryComplete(new PromptNotStartedException());
        }
    }

    private void OnOutput(string promptId, CliFrame frame)
    {
        if (Continuing(promptId) is not { } prompt)
            return;
        if (frame.IsResult)
            prompt.Result = frame; // it ends the prompt with TurnCompleted, which follows it
        else
            Append(promptId, frame.Type ?? "unknown", frame.Line, endsPrompt: false);
    }

    /// <summary>The prompt, once a result held back for it has gone out (more of the turn came: it did not end it); null: not in flight.</summary>
    private InFlight? Continuing(string promptId)
    {
        if (!_inFlight.TryGetValue(promptId, out var prompt))
            return null;
        if (prompt.Result is { } earlier)
            Append(promptId, earlier.Type!, earlier.Line, endsPrompt: false);
        prompt.Result = null;
        return prompt;
    }

    private void Append(string promptId, string type, ReadOnlyMemory<byte> data, bool endsPrompt)
    {
        if (_held.Count > 0 || _events.LastId >= _idsRecordedUpTo)
        {
            // Its id is past the reservation on record (the next one's write, at half a block's headroom, has not landed): a
            // host killed before it lands would hand the id out again after its restart. It waits, behind those waiting already.
            _held.Enqueue(new HeldEvent(promptId, type, data, endsPrompt));
            return;
        }
        HandOut(promptId, type, data, endsPrompt);
    }

    private void HandOut(string promptId, string type, ReadOnlyMemory<byte> data, bool endsPrompt)
    {
        ReserveEventIds();
        var item = _events.Append(promptId, type, data, endsPrompt);
        List<string>? ended = null;
        foreach (var subscription in _subscriptions.Values)
        {
            if (subscription.PromptId is not null && subscription.PromptId != promptId)
                continue;
            if (subscription.PromptId is null && subscription.Reader.TryPeek(out var unread) &&
                Math.Max(unread.Id, subscription.LiveFrom) < _events.FirstAvailable)
            {
                // It has not read a live event the buffer no longer keeps: held for it alone, its waiting events would grow with
                // the session's output. Its stream ends, and it can resume from its Last-Event-ID. (Its replay may give way
                // unread: a replay of a full buffer is not already too far behind.)
                subscription.Writer.TryComplete();
                (ended ??= []).Add(subscription.Id);
                continue;
            }
            subscription.Writer.TryWrite(item);
            if (endsPrompt && subscription.PromptId is not null)
            {
                subscription.Writer.TryComplete();
                (ended ??= []).Add(subscription.Id);
            }
        }
        if (endsPrompt && _durable && !_closing) // a closing one is forgotten by its manager
            Context.Parent.Tell(new ReplayHeld(_id, _events.Bytes));
        if (ended is null)
            return;
        foreach (var id in ended)
            _subscriptions.Remove(id);
    }

    /// <summary>
    /// Keeps a block of event ids journaled ahead of the ones handed out, so ids after a restart never repeat one a client
    /// saw. The write runs beside the events (half a block of headroom); only if it has not landed when they reach the end
    /// of the block on record do they wait for it.
    /// </summary>
    private void ReserveEventIds()
    {
        // Closing: its journal is to be deleted, and a write after the delete would leave a row of it behind.
        if (!_durable || _closing || _events.LastId + IdBlock / 2 < _idsReservedUpTo)
            return;
        _idsReservedUpTo = _events.LastId + IdBlock;
        PersistAsync(new EventIdsReserved(_idsReservedUpTo), OnIdsRecorded);
    }

    private void OnIdsRecorded(EventIdsReserved reserved)
    {
        _idsRecordedUpTo = reserved.UpTo;
        Release();
        SnapshotNow();
    }

    /// <summary>Hands out the events waiting for their ids' reservation, as far as the reservations on record go.</summary>
    private void Release()
    {
        while (_held.Count > 0 && _events.LastId < _idsRecordedUpTo)
        {
            var held = _held.Dequeue();
            HandOut(held.PromptId, held.Type, held.Data, held.EndsPrompt);
        }
    }

    /// <summary>
    /// The session ends here (closed, or about to start again from its journal, its manager told the last id handed out):
    /// the events waiting go out now, and none waits from now on.
    /// </summary>
    private void ReleaseAll()
    {
        _idsRecordedUpTo = long.MaxValue;
        Release();
    }

    /// <summary>Journals <paramref name="facts"/> in one write and then applies each (at once, for a session that journals nothing).</summary>
    private void RecordAll(IDurableEvent[] facts, Action<IDurableEvent> apply)
    {
        if (!_durable)
        {
            foreach (var fact in facts)
                apply(fact);
            return;
        }
        PersistAll(facts, written =>
        {
            apply(written);
            SnapshotNow();
        });
    }

    /// <summary>Journals <paramref name="e"/> and then applies it (at once, for a session that journals nothing).</summary>
    private void Record<T>(T e, Action<T> apply) where T : IDurableEvent
    {
        if (!_durable)
        {
            apply(e);
            return;
        }
        Persist(e, written =>
        {
            apply(written);
            SnapshotNow();
        });
    }

    private void SnapshotNow()
    {
        if (_closing || LastSequenceNr % SnapshotEvery != 0)
            return;
        _snapshotsSaving++;
        SaveSnapshot(new SessionSnapshot(
            _conversation is { } c ? new ConversationRecorded(c.SessionId, c.AccountId, c.ConfigDir) : null,
            _accountId, _turns, _idsReservedUpTo,
            _inFlight.Where(p => p.Value.Written).Select(p => new PendingPrompt(p.Key, p.Value.Text, p.Value.Dispatched)).ToList()));
    }

    private void Restore(SessionSnapshot snapshot)
    {
        _conversation = snapshot.Conversation is { } c ? new ConversationRef(c.ClaudeSessionId, c.AccountId, c.ConfigDir) : null;
        _accountId = snapshot.AccountId;
        _turns = snapshot.Turns;
        _idsReservedUpTo = snapshot.EventIdsReservedUpTo;
        _inFlight.Clear();
        foreach (var prompt in snapshot.Prompts)
            _inFlight[prompt.PromptId] = new InFlight(prompt.Text) { Recorded = true, Written = true, Dispatched = prompt.Dispatched };
    }

    private void CloseIfDone()
    {
        if (!_durable && _inFlight.Count == 0)
            Context.Stop(Self);
    }

    private Subscription Subscribe(string? promptId, IEnumerable<SessionEvent>? replay = null)
    {
        // Not SingleReader: that reader cannot count what waits in it, which a follower's bound needs.
        var channel = Channel.CreateUnbounded<SessionEvent>(new UnboundedChannelOptions { SingleWriter = true });
        foreach (var item in replay ?? [])
            channel.Writer.TryWrite(item);
        var subscription = new Subscription($"sub-{Interlocked.Increment(ref _subscriptionIds)}", promptId, channel.Writer, channel.Reader, _events.LastId + 1);
        _subscriptions[subscription.Id] = subscription;
        return subscription;
    }

    private SessionInfo Info() => new(_id, _type, _accountId, _inFlight.Count > 0 ? "busy" : "idle",
        _conversation?.SessionId, _turns, _events.LastId, _model);

    private static byte[] Error(string code, string message, TimeSpan? retryAfter = null) => retryAfter is { } wait
        ? JsonSerializer.SerializeToUtf8Bytes(new { code, message, retryAfter = (long)Math.Ceiling(wait.TotalSeconds) })
        : JsonSerializer.SerializeToUtf8Bytes(new { code, message });

    /// <param name="PromptId">Only this prompt's events, ending with its last; null: every event of the session.</param>
    /// <param name="LiveFrom">The id of its first event after its replay.</param>
    private sealed record Subscription(string Id, string? PromptId, ChannelWriter<SessionEvent> Writer, ChannelReader<SessionEvent> Reader, long LiveFrom);

    private sealed record HeldEvent(string PromptId, string Type, ReadOnlyMemory<byte> Data, bool EndsPrompt);

    private sealed class InFlight(string text)
    {
        public string Text { get; } = text;

        /// <summary>Its acceptance is journaled (or being written).</summary>
        public bool Recorded { get; set; }

        /// <summary>
        /// Its acceptance is journaled: only then is it in a snapshot. A snapshot taken while the write is on its way (another
        /// write landing first) would otherwise keep a prompt whose write then failed, and its client was told so.
        /// </summary>
        public bool Written { get; set; }

        public bool Dispatched { get; set; }
        public CliFrame? Result { get; set; }
    }
}
