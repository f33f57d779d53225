namespace Konsole.Gateway;

/// <summary>One Server-Sent Event: its type, its data's UTF-8 bytes (written verbatim) and its id when it has one.</summary>
/// <remarks>The id stays a number until it is written, instead of a string made for every event of a stream.</remarks>
public readonly record struct SseMessage(ReadOnlyMemory<byte> Data, string Type, long? Id = null);
