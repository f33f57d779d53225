using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Konsole.Actors.Protocol;

/// <summary>
/// The only producer of lines written to the CLI's stdin. A malformed line makes the CLI exit, so
/// client input is only ever embedded as a JSON string value, never forwarded as JSON.
/// </summary>
public static class StreamJsonWriter
{
    private static readonly JsonWriterOptions Options = new()
    {
        // Keeps non-ASCII text as UTF-8; control characters (and so \n, \r) are still escaped,
        // which keeps every message on exactly one line.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>A user message carrying <paramref name="uuid"/>, which the CLI echoes on the turn's result.</summary>
    public static byte[] UserMessage(string text, string uuid) => Write(w =>
    {
        w.WriteString("type"u8, "user"u8);
        w.WriteStartObject("message"u8);
        w.WriteString("role"u8, "user"u8);
        w.WriteStartArray("content"u8);
        w.WriteStartObject();
        w.WriteString("type"u8, "text"u8);
        w.WriteString("text"u8, text);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteString("uuid"u8, uuid);
    });

    /// <summary>A control request such as <c>initialize</c>.</summary>
    public static byte[] ControlRequest(string requestId, string subtype) => Control(requestId, subtype);

    /// <summary>A <c>set_model</c>: the next turns run on <paramref name="model"/> (<c>default</c>: the CLI's own default).</summary>
    public static byte[] SetModel(string requestId, string model) =>
        Control(requestId, "set_model", w => w.WriteString("model"u8, model));

    /// <summary>
    /// An <c>interrupt</c> that also drops what the CLI has queued (<c>cancel_queued</c>): a prompt written just
    /// before it may still wait in the CLI's queue, where a plain interrupt would miss it.
    /// </summary>
    public static byte[] Interrupt(string requestId) =>
        Control(requestId, "interrupt", w => w.WriteBoolean("cancel_queued"u8, true));

    /// <summary>A <c>control_request</c> of <paramref name="subtype"/>, with the request's other fields written by <paramref name="fields"/>.</summary>
    private static byte[] Control(string requestId, string subtype, Action<Utf8JsonWriter>? fields = null) => Write(w =>
    {
        w.WriteString("type"u8, "control_request"u8);
        w.WriteString("request_id"u8, requestId);
        w.WriteStartObject("request"u8);
        w.WriteString("subtype"u8, subtype);
        fields?.Invoke(w);
        w.WriteEndObject();
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, Options))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }
}
