using System.Text;
using System.Text.Json.Nodes;
using Konsole.Actors.Protocol;

namespace Konsole.Actors.Tests.Protocol;

/// <summary>Replays every exchange recorded with the real CLI (tests/fixtures/protocol) through the codec.</summary>
public sealed class RecordedProtocolTests
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "protocol");

    public static TheoryData<string> Recordings()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Fixtures, "*.jsonl").Order())
            data.Add(Path.GetFileName(file));
        return data;
    }

    [Fact]
    public void All_five_recordings_are_present()
    {
        Assert.Equal(5, Recordings().Count);
    }

    [Theory]
    [MemberData(nameof(Recordings))]
    public void Every_stdout_line_parses_and_keeps_its_raw_text(string file)
    {
        foreach (var line in Lines(file, ">>> "))
        {
            var frame = Parse(line);
            Assert.NotNull(frame);
            Assert.NotNull(frame.Type);
            Assert.Equal(line, frame.Raw);
        }
    }

    [Theory]
    [MemberData(nameof(Recordings))]
    public void Every_prompt_gets_exactly_one_result(string file)
    {
        var prompts = Lines(file, "<<< ").Count(l => JsonNode.Parse(l)!["type"]!.GetValue<string>() == "user");
        var results = Lines(file, ">>> ").Select(Parse).Count(f => f!.IsResult);
        Assert.Equal(prompts, results);
    }

    [Theory]
    [MemberData(nameof(Recordings))]
    public void The_writer_produces_the_recorded_user_messages(string file)
    {
        foreach (var line in Lines(file, "<<< "))
        {
            var recorded = JsonNode.Parse(line)!.AsObject();
            if (recorded["type"]!.GetValue<string>() != "user")
                continue;
            var text = recorded["message"]!["content"]![0]!["text"]!.GetValue<string>();
            var uuid = recorded["uuid"]?.GetValue<string>() ?? "00000000-0000-4000-8000-000000000000";
            recorded["uuid"] = uuid;

            var written = StreamJsonWriter.UserMessage(text, uuid);

            Assert.Equal((byte)'\n', written[^1]);
            Assert.True(JsonNode.DeepEquals(recorded, JsonNode.Parse(written)));
        }
    }

    [Fact]
    public void Results_carry_the_uuid_of_the_user_message_they_answer()
    {
        var results = Lines("interrupt.jsonl", ">>> ").Select(Parse).Where(f => f!.IsResult).ToList();

        Assert.Equal(["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"],
            results.Select(r => r!.UserMessageUuid));
        Assert.Equal("error_during_execution", results[0]!.Subtype);
    }

    [Fact]
    public void A_result_whose_type_comes_last_is_still_a_result()
    {
        var result = Lines("hot-two-turns.jsonl", ">>> ").Last();
        Assert.False(result.StartsWith("{\"type\"", StringComparison.Ordinal));

        var frame = Parse(result)!;

        Assert.True(frame.IsResult);
        Assert.Equal("success", frame.Subtype);
        Assert.False(frame.IsError);
        Assert.Equal("9982784f-3731-4c11-8a15-3798c90f4e21", frame.SessionId);
    }

    [Fact]
    public void Init_frames_name_the_session_and_clear_starts_a_new_one()
    {
        var inits = Lines("clear-conversation.jsonl", ">>> ").Select(Parse).Where(f => f!.IsInit).Select(f => f!.SessionId).ToList();

        Assert.Equal(3, inits.Count);
        Assert.Equal("1f2b77a6-668a-4ae3-807a-c3c3454dbdae", inits[0]);
        Assert.Equal("0b6f7c04-4a0c-4b4f-a384-dc61b2a9ad74", inits[1]);
        Assert.Equal(inits[1], inits[2]);
    }

    [Fact]
    public void A_rejected_rate_limit_and_the_failed_result_are_recognised()
    {
        var frames = Lines("rate-limited-429.jsonl", ">>> ").Select(Parse).ToList();

        var limit = frames.Single(f => f!.Type == "rate_limit_event")!.RateLimit!;
        Assert.Equal("rejected", limit.Status);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1795394784), limit.ResetsAt);
        var result = frames.Single(f => f!.IsResult)!;
        Assert.True(result.IsError);
        Assert.Equal("success", result.Subtype); // API errors can still say success: is_error decides
    }

    [Fact]
    public void Control_responses_name_their_request()
    {
        var response = Lines("interrupt.jsonl", ">>> ").Select(Parse).Single(f => f!.Type == "control_response")!;

        Assert.Equal(new ControlResponseInfo("success", "req_1_interrupt", null), response.ControlResponse);
    }

    private static CliFrame? Parse(string line) => StreamJsonParser.Parse(Encoding.UTF8.GetBytes(line));

    private static IEnumerable<string> Lines(string file, string prefix) =>
        File.ReadLines(Path.Combine(Fixtures, file)).Where(l => l.StartsWith(prefix, StringComparison.Ordinal)).Select(l => l[prefix.Length..]);
}
