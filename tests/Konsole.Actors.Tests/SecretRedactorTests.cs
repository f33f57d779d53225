namespace Konsole.Actors.Tests;

public sealed class SecretRedactorTests
{
    [Theory]
    [InlineData("token sk-ant-oat01-abcDEF_123-xyz here", "token sk-ant-oat01-*** here")]
    [InlineData("refresh sk-ant-ort01-abc", "refresh sk-ant-ort01-***")]
    [InlineData("key sk-ant-api03-abc-def", "key sk-ant-api03-***")]
    [InlineData("admin key sk-ant-admin01-abc", "admin key sk-ant-admin01-***")]
    [InlineData("Authorization: Bearer abc.def/ghi=", "Authorization: Bearer ***")]
    [InlineData("nothing secret", "nothing secret")]
    public void Credentials_are_masked_and_the_rest_is_left_alone(string text, string expected) =>
        Assert.Equal(expected, SecretRedactor.Redact(text));
}
