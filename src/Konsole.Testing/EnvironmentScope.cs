namespace Konsole.Testing;

/// <summary>
/// Sets environment variables of the test process (which every child process inherits) until disposed, then puts back
/// what they were, so a test that gives the host credentials to strip does not leave them to the tests after it.
/// </summary>
public sealed class EnvironmentScope : IDisposable
{
    private readonly (string Name, string? Value)[] _before;

    private EnvironmentScope((string Name, string? Value)[] values)
    {
        _before = values.Select(v => (v.Name, Environment.GetEnvironmentVariable(v.Name))).ToArray();
        foreach (var (name, value) in values)
            Environment.SetEnvironmentVariable(name, value);
    }

    /// <summary>Sets each variable (a null value removes it) for the whole process, whose other tests running meanwhile see it too.</summary>
    public static EnvironmentScope Set(params (string Name, string? Value)[] values) => new(values);

    public void Dispose()
    {
        foreach (var (name, value) in _before)
            Environment.SetEnvironmentVariable(name, value);
    }
}
