using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;

namespace Konsole.Actors.Tests;

public sealed class SecretRedactorTests
{
    [Fact]
    public void Messages_printed_in_dead_letters_show_neither_the_clis_line_nor_the_prompts_text()
    {
        // A session closed mid-turn: the rest of its turn goes to dead letters, whose log prints each message.
        var line = "{\"type\":\"user\",\"session_id\":\"s-1\",\"tool_use_result\":\"ANTHROPIC_API_KEY=sk-live-from-env\"}"u8.ToArray();
        var output = new TurnOutput("p-1", StreamJsonParser.Parse(line)!);
        var prompt = new Prompt("p-2", "ses-1", "my password is hunter22", null, Akka.Actor.ActorRefs.Nobody);

        Assert.DoesNotContain("sk-live-from-env", output.ToString());
        Assert.Contains($"Type = user, Subtype = , SessionId = s-1, UserMessageUuid = , IsError = False, RateLimit = , ControlResponse = , Lifecycle = , Bytes = {line.Length}", output.ToString());
        Assert.DoesNotContain("hunter22", prompt.ToString());
        Assert.Contains("PromptId = p-2, UserSessionId = ses-1, TextLength = 23,", prompt.ToString());
    }

    [Theory]
    [InlineData("token sk-ant-oat01-abcDEF_123-xyz here", "token sk-ant-oat01-*** here")]
    [InlineData("refresh sk-ant-ort01-abc", "refresh sk-ant-ort01-***")]
    [InlineData("key sk-ant-api03-abc-def", "key sk-ant-api03-***")]
    [InlineData("admin key sk-ant-admin01-abc", "admin key sk-ant-admin01-***")]
    [InlineData("Authorization: Bearer abc.def/ghi=", "Authorization: Bearer ***")]
    [InlineData("nothing secret", "nothing secret")]
    public void Credentials_are_masked_and_the_rest_is_left_alone(string text, string expected) =>
        Assert.Equal(expected, SecretRedactor.Redact(text));

    [Fact]
    public void Known_values_are_masked_whatever_their_shape_along_with_the_patterns() =>
        Assert.Equal("key *** then sk-ant-oat01-*** and *** again",
            SecretRedactor.Redact("key proxy-123abc then sk-ant-oat01-xyz and proxy-123abc again", ["proxy-123abc"]));

    [Fact]
    public void The_secrets_of_an_environment_are_the_values_of_variables_named_as_credentials_or_listed_longest_first()
    {
        var environment = new Dictionary<string, string?>
        {
            ["ANTHROPIC_API_KEY"] = "short-key",
            ["ANTHROPIC_AUTH_TOKEN"] = "a-longer-proxy-token",
            ["db_password"] = "hunter22",
            ["CLAUDE_CONFIG_DIR"] = "/home/me/.claude",
            ["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = "32000",
            ["CLAUDE_CODE_OAUTH_TOKEN"] = null,
            ["BLUEBOY_CREDS"] = "listed-one",
        };

        Assert.Equal(["a-longer-proxy-token", "short-key", "hunter22"], SecretRedactor.SecretsIn(environment));
        Assert.Equal(["a-longer-proxy-token", "listed-one", "short-key", "hunter22"], SecretRedactor.SecretsIn(environment, ["BLUEBOY_CREDS"]));
    }
}
