using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>Collects what the host logs.</summary>
internal sealed class StringWriterOutput : ITestOutputHelper
{
    private readonly System.Text.StringBuilder _text = new();

    public string Text
    {
        get { lock (_text) return _text.ToString(); }
    }

    public void WriteLine(string message)
    {
        lock (_text) _text.AppendLine(message);
    }

    public void WriteLine(string format, params object[] args) => WriteLine(string.Format(format, args));
}
