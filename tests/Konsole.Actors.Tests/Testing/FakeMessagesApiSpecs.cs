using System.Net.Http.Json;
using Konsole.Testing.FakeApi;

namespace Konsole.Actors.Tests.Testing;

/// <summary>The fake Messages API shipped for users' tests: what it takes for the user's text.</summary>
public sealed class FakeMessagesApiSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_CLIs_own_blocks_are_left_out_but_a_prompt_in_tags_of_its_own_is_the_users()
    {
        await using var api = await FakeMessagesApi.StartAsync();
        const string clear = "<command-name>/clear</command-name>\n            <command-message>clear</command-message>\n            <command-args></command-args>";
        // Prompts in tags are common (XML-structured prompting); the fake took any all-tags block for the CLI's.
        await PostAsync(api, [clear, "<local-command-stdout></local-command-stdout>", "<question>What is 2+2?</question>"]);

        var request = await api.WaitForRequestAsync(_ => true, Timeout);
        Assert.Equal(["<question>What is 2+2?</question>"], request.UserTexts);
    }

    [Fact]
    public async Task A_prompt_of_many_like_elements_then_text_is_answered_at_once()
    {
        await using var api = await FakeMessagesApi.StartAsync();
        // The pattern that read it tried every grouping of the 40 elements before failing on the text after them: 2^39 steps.
        var prompt = string.Concat(Enumerable.Repeat("<item>a</item>\n", 40)) + "Which is largest?";

        using var answered = await PostAsync(api, [prompt]).WaitAsync(Timeout);

        Assert.True(answered.IsSuccessStatusCode);
        Assert.Equal(prompt, api.Requests[0].LastUserText);
    }

    private static async Task<HttpResponseMessage> PostAsync(FakeMessagesApi api, string[] texts)
    {
        using var client = new HttpClient { BaseAddress = new Uri(api.BaseUrl) };
        var body = new
        {
            model = "claude-test",
            max_tokens = 100,
            stream = false,
            messages = new[] { new { role = "user", content = texts.Select(t => new { type = "text", text = t }).ToArray() } },
        };
        return await client.PostAsJsonAsync("/v1/messages", body);
    }
}
