using Konsole.Testing;

namespace Konsole.Integration.Tests;

/// <summary>Installs the pinned real CLI once for the run (npm), or uses KONSOLE_CLAUDE_CLI.</summary>
public sealed class RealClaudeFixture : IAsyncLifetime
{
    public string Path { get; private set; } = "";

    public async Task InitializeAsync() => Path = await PinnedClaudeCli.EnsureInstalledAsync();

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>
/// Real CLI processes are heavy (~200 MB, ~0.5 s to start): these specs run one at a time, each with its
/// own accounts and fake API.
/// </summary>
[CollectionDefinition(Name)]
public sealed class RealClaudeCollection : ICollectionFixture<RealClaudeFixture>
{
    public const string Name = "real claude";
}
