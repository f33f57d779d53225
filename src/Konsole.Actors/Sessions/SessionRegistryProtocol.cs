using Konsole.Actors.Durability;

namespace Konsole.Actors.Sessions;

/// <summary>Messages between the <see cref="SessionManager"/> and its <see cref="SessionRegistry"/>.</summary>
public static class SessionRegistryProtocol
{
    /// <summary>To the parent, once the journal is read back: the open sessions and the ids of closed ones (oldest first).</summary>
    public sealed record RegistryRecovered(IReadOnlyList<SessionRegistered> Open, IReadOnlyList<string> Closed);

    /// <summary>Records an opened session; answered with <see cref="SessionRecorded"/> once it is in the journal.</summary>
    public sealed record RecordOpened(SessionRegistered Session);

    public sealed record SessionRecorded(string SessionId);

    /// <summary>Records a closed session (its id stays taken); answered with <see cref="CloseRecorded"/> once it is in the journal.</summary>
    public sealed record RecordClosed(string SessionId);

    public sealed record CloseRecorded(string SessionId);
}
