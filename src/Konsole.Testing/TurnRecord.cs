using System.Text.Json;
using Akka.TestKit;
using Konsole.Actors.Prompts;

namespace Konsole.Testing;

/// <summary>Everything a prompt's caller received, up to and including the turn's end.</summary>
/// <param name="NotStarted">It was told <see cref="PromptNotStarted"/> (it waited in a queue when its account began to drain).</param>
public sealed record TurnRecord(
    IReadOnlyList<PromptQueued> Queued,
    IReadOnlyList<TurnOutput> Outputs,
    TurnCompleted? Completed,
    TurnFailed? Failed,
    IReadOnlyList<TurnLineDropped> Dropped,
    bool NotStarted = false)
{
    /// <summary>The <c>result</c> field of the turn's result frame, if it completed with one.</summary>
    public string? ResultText
    {
        get
        {
            if (Completed is null)
                return null;
            using var document = JsonDocument.Parse(Completed.Result.Raw);
            return document.RootElement.TryGetProperty("result", out var result) && result.ValueKind == JsonValueKind.String
                ? result.GetString()
                : null;
        }
    }
}

public static class TurnProbeExtensions
{
    /// <summary>
    /// Collects what the caller of a prompt receives until the turn ends (<see cref="TurnCompleted"/> or
    /// <see cref="TurnFailed"/>). Throws when it does not end within <paramref name="timeout"/>, or when
    /// something arrives that is not part of a prompt's reply.
    /// </summary>
    public static async Task<TurnRecord> ReceiveTurnAsync(this TestProbe caller, TimeSpan timeout)
    {
        var queued = new List<PromptQueued>();
        var outputs = new List<TurnOutput>();
        var dropped = new List<TurnLineDropped>();
        var notStarted = false;
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            var message = left > TimeSpan.Zero ? await caller.ReceiveOneAsync(left) : null;
            switch (message)
            {
                case PromptQueued q: queued.Add(q); break;
                case TurnOutput o: outputs.Add(o); break;
                case TurnLineDropped d: dropped.Add(d); break;
                case PromptNotStarted: notStarted = true; break;
                case TurnCompleted c: return new TurnRecord(queued, outputs, c, null, dropped, notStarted);
                case TurnFailed f: return new TurnRecord(queued, outputs, null, f, dropped, notStarted);
                case null:
                    throw new TimeoutException(
                        $"the turn did not end within {timeout.TotalSeconds:0.#}s; received {queued.Count} queued and {outputs.Count} outputs" +
                        (outputs.Count > 0 ? $", the last: {Truncate(outputs[^1].Frame.Raw)}" : ""));
                default:
                    throw new InvalidOperationException($"a prompt's caller received {message.GetType().Name}: {message}");
            }
        }
    }

    private static string Truncate(string text) => text.Length <= 300 ? text : text[..300] + "...";
}
