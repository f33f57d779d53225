using System.Runtime.Serialization;
using System.Text.Json;
using Akka.Actor;
using Akka.Serialization;

namespace Konsole.Actors.Durability;

/// <summary>
/// Writes <see cref="IDurableEvent"/>s as UTF-8 JSON under stable manifests (<c>roles-assigned.v1</c>, ...), so a journal
/// outlives renamed or moved C# types and stays readable in the database.
/// </summary>
public sealed class DurableEventSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static readonly Dictionary<string, Type> Types = new()
    {
        ["roles-assigned.v1"] = typeof(RolesAssigned),
        ["session-registered.v1"] = typeof(SessionRegistered),
        ["session-unregistered.v1"] = typeof(SessionUnregistered),
        ["sessions-snapshot.v1"] = typeof(SessionsSnapshot),
        ["worker-account-recorded.v1"] = typeof(WorkerAccountRecorded),
        ["prompt-recorded.v1"] = typeof(PromptRecorded),
        ["prompt-dispatch-recorded.v1"] = typeof(PromptDispatchRecorded),
        ["prompt-end-recorded.v1"] = typeof(PromptEndRecorded),
        ["event-ids-reserved.v1"] = typeof(EventIdsReserved),
        ["session-snapshot.v1"] = typeof(SessionSnapshot),
    };

    private static readonly Dictionary<Type, string> Manifests = Types.ToDictionary(p => p.Value, p => p.Key);

    public override int Identifier => 4711;

    public override string Manifest(object o) =>
        Manifests.TryGetValue(o.GetType(), out var manifest)
            ? manifest
            : throw new ArgumentException($"{o.GetType()} has no manifest in {nameof(DurableEventSerializer)}", nameof(o));

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Json);

    public override object FromBinary(byte[] bytes, string manifest) =>
        Types.TryGetValue(manifest, out var type)
            ? JsonSerializer.Deserialize(bytes, type, Json) ?? throw new SerializationException($"'{manifest}' read as null")
            : throw new SerializationException($"unknown manifest '{manifest}': a journal written by a newer Konsole?");
}
