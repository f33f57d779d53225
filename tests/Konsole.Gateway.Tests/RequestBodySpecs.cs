using System.Text;
using Konsole.Actors.Configuration;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Konsole.Gateway.Tests;

/// <summary>A request body read as the host begins to stop, on an HttpContext of the test's.</summary>
public sealed class RequestBodySpecs
{
    [Fact]
    public async Task A_body_still_arriving_when_the_host_begins_to_stop_is_answered_503_at_once()
    {
        var lifetime = new Lifetime();
        var context = new DefaultHttpContext
        {
            RequestServices = new ServiceCollection().AddLogging().AddSingleton<IHostApplicationLifetime>(lifetime)
                .AddSingleton(KonsoleConfig.Parse("").Settings).BuildServiceProvider(),
        };
        var body = new Trickle("{\"prompt\": \"a long one"u8.ToArray());
        context.Request.Body = body;
        context.Request.ContentLength = 6_000_000; // sent slowly, it would hold the host's stop for its whole timeout
        context.Response.Body = new MemoryStream();

        var reading = RequestBodies.ReadPromptAsync(context, maxPromptBytes: 1024 * 1024);
        await body.Waiting.WaitAsync(TimeSpan.FromSeconds(30)); // its first bytes read, the rest still to come
        lifetime.Stop();
        var (text, problem) = await reading.WaitAsync(TimeSpan.FromSeconds(30));
        await problem!.ExecuteAsync(context);

        Assert.Null(text);
        Assert.Equal(503, context.Response.StatusCode);
        Assert.Contains("shutting_down", Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray()));
    }

    /// <summary>Its first bytes, then nothing more until the read is cancelled.</summary>
    private sealed class Trickle(byte[] first) : Stream
    {
        private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private bool _sent;

        public Task Waiting => _waiting.Task;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_sent)
            {
                _sent = true;
                first.CopyTo(buffer);
                return first.Length;
            }
            _waiting.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class Lifetime : IHostApplicationLifetime
    {
        private readonly CancellationTokenSource _stopping = new();

        public CancellationToken ApplicationStarted => CancellationToken.None;
        public CancellationToken ApplicationStopping => _stopping.Token;
        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void Stop() => _stopping.Cancel();

        public void StopApplication() => Stop();
    }
}
