namespace Konsole.Actors;

/// <summary>
/// The answer of an actor that reads its state back from the journal at start (the <see cref="Routing.RoleRouter"/>, the
/// <see cref="Sessions.SessionManager"/>) to its protocol's <c>GetReadiness</c>, given at once in every state: ready to
/// serve, or what it still waits for (messages sent to it meanwhile wait too).
/// </summary>
public sealed record Readiness(string? Waiting)
{
    public static readonly Readiness Ready = new((string?)null);
}
