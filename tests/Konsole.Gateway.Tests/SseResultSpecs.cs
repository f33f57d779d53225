using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Konsole.Gateway.Tests;

/// <summary>SSE responses: events that never pause, and a client that goes away while the events wait for the next one.</summary>
public sealed class SseResultSpecs
{
    [Fact]
    public async Task Events_that_never_pause_still_go_out_as_they_come_not_all_at_the_end()
    {
        var context = new DefaultHttpContext();
        var client = new Received();
        context.Response.Body = client;
        var yielded = 0;

        async IAsyncEnumerable<SseMessage> Unpausing()
        {
            var data = new byte[1024];
            while (client.Length == 0 && yielded < 10_000) // each one at once, as from a replay buffer
            {
                yielded++;
                yield return new SseMessage(data, "assistant", yielded);
            }
            await Task.CompletedTask;
        }

        await new SseResult(Unpausing()).ExecuteAsync(context).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.InRange(yielded, 1, SseResult.FlushAtBytes / 1024 + 1); // the client had data after about 32 KB, not 10 MB
    }

    [Fact]
    public async Task A_quiet_stream_gets_keep_alive_comments_until_its_next_event()
    {
        var context = new DefaultHttpContext();
        var client = new Received();
        context.Response.Body = client;
        var kept = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Wrote = () =>
        {
            if (System.Text.Encoding.ASCII.GetString(client.ToArray()).Split(": keep-alive\n\n").Length > 2)
                kept.TrySetResult();
        };

        async IAsyncEnumerable<SseMessage> Quiet()
        {
            yield return new SseMessage("{}"u8.ToArray(), "first", 1);
            await kept.Task; // two keep-alives went out meanwhile
            yield return new SseMessage("{}"u8.ToArray(), "second", 2);
        }

        await new SseResult(Quiet(), TimeSpan.FromMilliseconds(50)).ExecuteAsync(context).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Matches("^id: 1\nevent: first\ndata: {}\n\n(: keep-alive\n\n){2,}id: 2\nevent: second\ndata: {}\n\n$",
            System.Text.Encoding.ASCII.GetString(client.ToArray()));
    }

    /// <summary>What the client received (the headers' flush sends no bytes of the body).</summary>
    private sealed class Received : MemoryStream
    {
        /// <summary>Called after each write.</summary>
        public Action Wrote { get; set; } = () => { };

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            base.Write(buffer);
            Wrote();
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            base.Write(buffer, offset, count);
            Wrote();
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            base.Write(buffer.Span);
            Wrote();
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer, offset, count);
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task A_write_that_fails_while_the_events_wait_ends_the_response_and_the_events_without_an_exception()
    {
        using var aborted = new CancellationTokenSource();
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        await RespondAsync(aborted, new ResetConnection(), ended); // does not throw

        Assert.True(aborted.IsCancellationRequested); // the request was aborted...
        await ended.Task.WaitAsync(TimeSpan.FromSeconds(30)); // ...and the events ended with it
    }

    [Fact]
    public async Task A_client_gone_before_the_headers_went_out_still_ends_the_events()
    {
        using var aborted = new CancellationTokenSource();
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await aborted.CancelAsync();

        await RespondAsync(aborted, new MemoryStream(), ended);

        await ended.Task.WaitAsync(TimeSpan.FromSeconds(30)); // its clean-up ran (a prompt's stream unfollows its session there)
    }

    /// <summary>The SSE response of <see cref="Events"/> to a request that <paramref name="aborted"/> aborts, written to <paramref name="body"/>.</summary>
    private static Task RespondAsync(CancellationTokenSource aborted, Stream body, TaskCompletionSource ended)
    {
        var context = new DefaultHttpContext();
        context.Features.Set<IHttpRequestLifetimeFeature>(new Lifetime(aborted));
        context.Response.Body = body;
        return new SseResult(Events(ended)).ExecuteAsync(context).WaitAsync(TimeSpan.FromSeconds(30));
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
