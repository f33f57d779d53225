using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Konsole.Gateway.Tests;

/// <summary>An SSE response whose client goes away while the events wait for the next one.</summary>
public sealed class SseResultSpecs
{
    [Fact]
    public async Task A_write_that_fails_while_the_events_wait_ends_the_response_and_the_events_without_an_exception()
    {
        using var aborted = new CancellationTokenSource();
        var context = new DefaultHttpContext();
        context.Features.Set<IHttpRequestLifetimeFeature>(new Lifetime(aborted));
        context.Response.Body = new ResetConnection();
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        await new SseResult(Events(ended)).ExecuteAsync(context).WaitAsync(TimeSpan.FromSeconds(30)); // does not throw

        Assert.True(aborted.IsCancellationRequested); // the request was aborted...
        await ended.Task.WaitAsync(TimeSpan.FromSeconds(30)); // ...and the events ended with it
    }

    /// <summary>One event, then nothing until the request ends.</summary>
    private static async IAsyncEnumerable<SseMessage> Events(TaskCompletionSource ended, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        try
        {
            yield return new SseMessage("{}"u8.ToArray(), "first", 1);
            await Task.Delay(Timeout.Infinite, cancel);
            yield return new SseMessage("{}"u8.ToArray(), "never", 2);
        }
        finally
        {
            ended.SetResult();
        }
    }

    /// <summary>A connection the client has reset: every write fails, as Kestrel's do then.</summary>
    private sealed class ResetConnection : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("Connection reset by peer");

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromException(new IOException("Connection reset by peer"));

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromException(new IOException("Connection reset by peer"));
    }

    /// <summary>The request's lifetime as Kestrel's: aborting it cancels <see cref="RequestAborted"/>.</summary>
    private sealed class Lifetime(CancellationTokenSource aborted) : IHttpRequestLifetimeFeature
    {
        public CancellationToken RequestAborted
        {
            get => aborted.Token;
            set => throw new NotSupportedException();
        }

        public void Abort() => aborted.Cancel();
    }
}
