using System.Text.Json;
using Konsole.Testing;

namespace Konsole.Integration.Tests;

/// <summary>
/// Which installs <see cref="PinnedClaudeCli"/> hands out, on stand-in installs (a script in the CLI's place that
/// counts its runs), so npm is never run: one whose <c>--version</c> never answered may be half done.
/// </summary>
public sealed class PinnedClaudeCliSpecs : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("konsole-pinned-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Cli => Path.Combine(_dir, "node_modules", ".bin", "claude");
    private string Runs => Path.Combine(_dir, "runs");
    private string Marker => Path.Combine(_dir, ".verified");

    private void StandInInstall(string answers)
    {
        var package = Directory.CreateDirectory(Path.Combine(_dir, "node_modules", "@anthropic-ai", "claude-code")).FullName;
        File.WriteAllText(Path.Combine(package, "package.json"), JsonSerializer.Serialize(new { name = PinnedClaudeCli.Package, version = PinnedClaudeCli.Version }));
        Directory.CreateDirectory(Path.GetDirectoryName(Cli)!);
        File.WriteAllText(Cli, $"#!/bin/sh\necho run >> '{Runs}'\necho '{answers} (Claude Code)'\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(Cli, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private int RunCount => File.Exists(Runs) ? File.ReadAllLines(Runs).Length : 0;

    [Fact]
    public async Task An_install_it_did_not_make_is_handed_out_once_its_version_answers_and_then_without_asking_again()
    {
        StandInInstall(answers: PinnedClaudeCli.Version);

        Assert.Equal(Cli, await PinnedClaudeCli.EnsureInstalledAsync(_dir));
        Assert.Equal(1, RunCount);
        Assert.Equal(PinnedClaudeCli.Version, File.ReadAllText(Marker));

        Assert.Equal(Cli, await PinnedClaudeCli.EnsureInstalledAsync(_dir));
        Assert.Equal(1, RunCount); // verified once: not run again
    }

    [Fact]
    public async Task A_marker_of_another_version_does_not_count_the_install_is_asked_again()
    {
        StandInInstall(answers: PinnedClaudeCli.Version);
        File.WriteAllText(Marker, "2.0.0");

        Assert.Equal(Cli, await PinnedClaudeCli.EnsureInstalledAsync(_dir));
        Assert.Equal(1, RunCount);
        Assert.Equal(PinnedClaudeCli.Version, File.ReadAllText(Marker));
    }

    [Fact]
    public async Task Callers_at_once_get_the_same_install_asked_once()
    {
        StandInInstall(answers: PinnedClaudeCli.Version);

        var paths = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => PinnedClaudeCli.EnsureInstalledAsync(_dir))));

        Assert.All(paths, path => Assert.Equal(Cli, path));
        Assert.Equal(1, RunCount);
    }
}
