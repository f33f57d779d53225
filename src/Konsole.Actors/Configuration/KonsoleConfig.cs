using System.Globalization;
using System.Text.RegularExpressions;
using Akka.Configuration;
using Akka.Configuration.Hocon;

using Konsole.Actors.Accounts;
using Konsole.Actors.Processes;

namespace Konsole.Actors.Configuration;

/// <summary>A configuration the host refuses to start with; the message names the file and the key.</summary>
public sealed class KonsoleConfigException(string message) : Exception(message);

/// <summary>
/// Loads <c>hocon/konsole.hocon</c> (embedded) merged with an optional user file, and validates all of
/// it before anything starts: unknown keys, wrong types, duplicate account ids and roles naming no
/// account are refused, never half-applied.
/// </summary>
public static partial class KonsoleConfig
{
    public const string DefaultsName = "hocon/konsole.hocon (embedded defaults)";

    private static readonly string[] ForbiddenEnvironment = ["CLAUDE_CONFIG_DIR", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDECODE"];
    private static readonly HashSet<string> AccountKeys = ["id", "label", "config-dir", "api-key-env", "tier", "simulated"];

    /// <summary>The embedded defaults.</summary>
    public static Config Defaults { get; } = ParseText(ReadDefaults(), DefaultsName);

    /// <summary>
    /// Loads the defaults merged with <paramref name="userFile"/> (may be null), then <paramref name="overrides"/> (HOCON that
    /// wins over both, such as the host's --demo accounts, made from the data dir they configure), and validates the result.
    /// </summary>
    public static (Config Config, KonsoleSettings Settings) Load(string? userFile, Func<string, string>? overrides = null)
    {
        if (userFile is null && overrides is null)
            return (Defaults, Read(Defaults, DefaultsName));
        if (userFile is not null && !File.Exists(userFile))
            throw new KonsoleConfigException($"{userFile}: configuration file not found");
        string text;
        try
        {
            text = userFile is null ? "" : File.ReadAllText(userFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KonsoleConfigException($"{userFile}: cannot read the configuration file: {e.Message}");
        }
        var source = userFile ?? "(overrides)";
        if (overrides is not null)
        {
            // Its syntax and keys are checked on their own, so such an error is reported at its own line; its values only
            // with the overrides over them (an account they replace need not be valid, a role may name one of theirs).
            var user = ParseText(text, source);
            RefuseUnknownKeys(user, source);
            text += "\n" + overrides(ResolveDataDir(new Reader(user.WithFallback(Defaults), source).String("konsole.data-dir")));
        }
        return Parse(text, source);
    }

    /// <summary>Parses HOCON text as if it were a user file named <paramref name="source"/>, merged over the defaults.</summary>
    public static (Config Config, KonsoleSettings Settings) Parse(string hocon, string source = "(inline configuration)")
    {
        var user = ParseText(hocon, source);
        RefuseUnknownKeys(user, source);
        var merged = user.WithFallback(Defaults);
        var settings = Read(merged, source);
        var r = new Reader(merged, source);
        // Akka's HOCON trims strings: a token of spaces would read as none, and the gateway would run without one.
        // (Whitespace after a value, before a comment or a brace, is a literal of its own: only the first one is the value.)
        if (settings.Gateway.AuthToken.Length == 0 && r.Value("konsole.gateway.auth-token").Values is [HoconLiteral { Value.Length: > 0 }, ..])
            throw r.Error("konsole.gateway.auth-token", "is blank: set a token, or \"\" for none");
        // The akka section is Akka's (its keys are not checked here), but a bad value of these would stop the start with a stack trace.
        foreach (var key in (string[])["akka.loglevel", "akka.stdout-loglevel"])
        {
            if (merged.HasPath(key))
                r.Typed(key, "one of DEBUG, INFO, WARNING, ERROR or OFF", v => Akka.Event.Logging.LogLevelFor(v.GetString()), _ => true);
        }
        // The journal's events are written, and read back, by konsole's own serializer: a file must not rebind them.
        foreach (var section in (string[])["akka.actor.serializers", "akka.actor.serialization-bindings", "akka.actor.serialization-identifiers"])
        {
            foreach (var (name, value) in Defaults.GetValue(section).GetObject().Items)
            {
                if (merged.GetValue(section)?.GetObject()?.Items.GetValueOrDefault(name)?.ToString() != value.ToString())
                    throw r.Error($"{section} \"{name}\"", "is konsole's own (its journal's events are written and read back with it): leave it out");
            }
        }
        // Akka would log the whole configuration, this file's secrets with it.
        if (merged.HasPath("akka.log-config-on-start") && r.Typed("akka.log-config-on-start", "on or off", v => v.GetBoolean(), _ => true)
            && (settings.Gateway.AuthToken.Length > 0 || settings.Claude.Environment.Count > 0 || !settings.Persistence.IsSqlite))
            throw new KonsoleConfigException($"{source}: akka.log-config-on-start would write konsole.gateway.auth-token, konsole.claude.environment " +
                "and a database's connection string (its password) to the log; turn it off, or keep the token in konsole.gateway.auth-token-file " +
                "and the variables in the host's environment");
        return (merged, settings);
    }

    private static Config ParseText(string text, string source)
    {
        if (Unbalanced(text) is { } problem)
            throw new KonsoleConfigException($"{source}: malformed HOCON: {problem}");
        Config config;
        try
        {
            config = ConfigurationFactory.ParseString(text, included => throw new KonsoleConfigException(
                $"{source}: include \"{included}\" is not supported: put the settings in this file"));
        }
        catch (FormatException e) when (e.Message.StartsWith("Unresolved substitution: ", StringComparison.Ordinal))
        {
            throw Substitution(source, text);
        }
        catch (Exception e) when (e is FormatException or ConfigurationException)
        {
            throw new KonsoleConfigException($"{source}: malformed HOCON: " + (CommaAfterObject(text, e.Message) is { } at
                ? $"',' after an object's '}}' at {at}: Akka's HOCON does not take one there; end the field with a new line instead"
                : $"{FirstLine(e.Message)}{Position(text, e.Message)}"));
        }
        // Akka's HOCON reads no environment variables, and a value substituted in place can not be checked as typed.
        return config.Substitutions?.Any() == true ? throw Substitution(source, text) : config;
    }

    private static KonsoleConfigException Substitution(string source, string text)
    {
        // Where it is, found outside comments and strings (a string may hold "${" and a secret).
        var what = "a substitution";
        if (Unquoted(text).FirstOrDefault(c => c.Char == '$' && c.Index + 1 < text.Length && text[c.Index + 1] == '{') is { Char: '$' } at)
        {
            var end = text.IndexOfAny(['}', '\n'], at.Index);
            what = $"{(end >= 0 && text[end] == '}' ? text[at.Index..(end + 1)] : "${")} (line {at.Line}, column {at.Column})";
        }
        return new($"{source}: {what}: substitutions are not supported: write the value itself " +
            "(for a secret: konsole.gateway.auth-token-file, an account's api-key-env)");
    }

    private static void RefuseUnknownKeys(Config user, string source)
    {
        foreach (var (key, value) in user.Root.GetObject().Items)
        {
            if (key == "akka") continue;
            if (key != "konsole")
                throw new KonsoleConfigException($"{source}: unknown key '{Named(key)}' (expected 'konsole' or 'akka')");
            RefuseUnknown(value, Defaults.GetValue("konsole"), "konsole", source);
        }
    }

    private static void RefuseUnknown(HoconValue user, HoconValue defaults, string path, string source)
    {
        if (!defaults.IsObject() || path == "konsole.claude.environment")
            return;
        if (!user.IsObject())
            throw new KonsoleConfigException($"{source}: {path} must be an object {{ {string.Join(", ", defaults.GetObject().Items.Keys.Select(k => k + " = ..."))} }}");
        var known = defaults.GetObject().Items;
        foreach (var (key, value) in user.GetObject().Items)
        {
            if (!known.TryGetValue(key, out var defaultValue))
                throw new KonsoleConfigException(
                    $"{source}: unknown key '{path}.{Named(key)}' (known keys under {path}: {string.Join(", ", known.Keys)})");
            RefuseUnknown(value, defaultValue, $"{path}.{key}", source);
        }
    }

    private static KonsoleSettings Read(Config c, string source)
    {
        var r = new Reader(c, source);
        var dataDir = ResolveDataDir(r.String("konsole.data-dir"));
        var workingDirectory = r.String("konsole.claude.working-directory");
        var cliPath = r.NonEmptyString("konsole.claude.path");
        var claude = new ClaudeSettings(
            Path: cliPath.StartsWith("~/", StringComparison.Ordinal) ? ExpandPath(cliPath) : cliPath, // a bare name stays one, for PATH
            ExtraArgs: r.StringList("konsole.claude.extra-args"),
            TurnTimeout: r.Duration("konsole.claude.turn-timeout"),
            InterruptTimeout: r.Duration("konsole.claude.interrupt-timeout", max: TimeSpan.FromHours(1)),
            WorkingDirectory: workingDirectory.Length == 0 ? Directory.GetCurrentDirectory() : ExpandPath(workingDirectory),
            Environment: ReadEnvironment(r),
            MaxLineBytes: r.ByteSize("konsole.claude.max-line-bytes"),
            StartTimeout: r.Duration("konsole.claude.start-timeout"),
            StopGrace: r.Duration("konsole.claude.stop-grace", max: TimeSpan.FromHours(1)),
            ChatSystemPrompt: r.String("konsole.claude.chat-system-prompt"),
            Restart: new BackoffSettings(
                r.Duration("konsole.claude.restart.min-backoff"),
                r.Duration("konsole.claude.restart.max-backoff"),
                r.Fraction("konsole.claude.restart.random-factor"),
                r.PositiveInt("konsole.claude.restart.max-restarts"),
                r.Duration("konsole.claude.restart.window")));
        if (claude.Restart.MaxBackoff < claude.Restart.MinBackoff)
            throw r.Error("konsole.claude.restart.max-backoff", "must not be shorter than min-backoff");
        if (claude.MaxLineBytes > Array.MaxLength)
            throw r.Error("konsole.claude.max-line-bytes", $"must be at most {Array.MaxLength} bytes (2 GiB): a line is kept in one array");
        if (claude.MaxLineBytes < MinLineBytes)
            throw r.Error("konsole.claude.max-line-bytes", $"must be at least {MinLineBytes / 1024}KiB: the CLI's own first lines (its tools, its answer to initialize) are several KB");
        if (!Directory.Exists(claude.WorkingDirectory))
            throw r.Error("konsole.claude.working-directory", $"'{claude.WorkingDirectory}' is not a directory");

        var oauthMinBackoff = r.Duration("konsole.oauth.retry-min-backoff");
        var oauthMaxBackoff = r.Duration("konsole.oauth.retry-max-backoff");
        if (oauthMaxBackoff < oauthMinBackoff)
            throw r.Error("konsole.oauth.retry-max-backoff", "must not be shorter than retry-min-backoff");
        var accounts = ReadAccounts(r, dataDir);
        var roles = ResolveRoles(r, accounts);
        return new KonsoleSettings(
            dataDir,
            claude,
            accounts,
            roles,
            r.PositiveInt("konsole.queue.max-depth"),
            new OAuthSettings(r.Duration("konsole.oauth.refresh-threshold"), TokenEndpoint(r), oauthMinBackoff, oauthMaxBackoff),
            new GatewaySettings(
                r.NonEmptyString("konsole.gateway.urls"),
                r.String("konsole.gateway.auth-token"),
                r.String("konsole.gateway.auth-token-file") is { Length: > 0 } tokenFile ? ExpandPath(tokenFile) : "",
                // A request body may hold it JSON-escaped (up to 6 bytes a byte): at most that must fit one buffer.
                r.ByteSize("konsole.gateway.max-prompt-bytes", max: 256L * 1024 * 1024),
                ReadAllowedHosts(r),
                ReadOrigins(r),
                r.PositiveInt("konsole.gateway.max-streams"),
                r.Duration("konsole.gateway.keep-alive", max: TimeSpan.FromHours(1))),
            new SessionSettings(r.PositiveInt("konsole.sessions.max-workers"), r.PositiveInt("konsole.sessions.replay-buffer"),
                r.ByteSize("konsole.sessions.replay-buffer-bytes"), r.PositiveInt("konsole.sessions.max-open"),
                r.ByteSize("konsole.sessions.replay-total-bytes")),
            r.Duration("konsole.shutdown.drain-timeout", max: TimeSpan.FromHours(24)), // the host's stop is bounded by it
            r.Fraction("konsole.rate-limits.warning-utilization"),
            ReadPersistence(r, dataDir));
    }

    private static PersistenceSettings ReadPersistence(Reader r, string dataDir)
    {
        var provider = r.NonEmptyString("konsole.persistence.provider");
        if (!Providers.Contains(provider))
            throw r.Error("konsole.persistence.provider", $"'{provider}' is not a database konsole has a driver for: SQLite.MS, " +
                "or a Linq2Db name of PostgreSQL or SQL Server such as PostgreSQL.15 or SqlServer.2022");
        var connection = r.String("konsole.persistence.connection-string");
        var settings = new PersistenceSettings(provider, connection);
        if (connection.Length > 0)
        {
            try
            {
                // Only its form is checked here (a database that does not answer is found when the state is read back).
                _ = provider.StartsWith("PostgreSQL", StringComparison.Ordinal) ? new Npgsql.NpgsqlConnectionStringBuilder(connection)
                    : provider.StartsWith("SqlServer", StringComparison.Ordinal) ? new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(connection)
                    : (System.Data.Common.DbConnectionStringBuilder)new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(connection);
            }
            catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException or OverflowException or InvalidOperationException or InvalidCastException)
            {
                // Not the driver's message: an unquoted ';' in a password makes the rest of it a "keyword" the driver names.
                throw r.Error("konsole.persistence.connection-string", $"is not a {provider} connection string ({e.GetType().Name}): " +
                    "check its keywords and values, and quote a value holding ';' or '='");
            }
            return settings;
        }
        if (!settings.IsSqlite)
            throw r.Error("konsole.persistence.connection-string", $"is required with provider '{provider}'");
        return settings with { ConnectionString = $"Data Source={Path.Combine(dataDir, "konsole.db")};Default Timeout=30;Pooling=True" };
    }

    private static IReadOnlyList<string> ReadOrigins(Reader r)
    {
        const string key = "konsole.gateway.cors-origins";
        var origins = r.StringList(key);
        foreach (var origin in origins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/"
                || uri.UserInfo.Length > 0 || uri.Query.Length > 0 || uri.Fragment.Length > 0 || origin.Contains('*'))
                throw r.Error(key, (MaskedUrl(origin) is { } shown ? $"holds '{shown}'" : "holds a value that is not an absolute URL") +
                    ": each origin is a scheme, host and port such as \"http://localhost:3000\", never a wildcard");
        }
        return origins.Select(o => o.TrimEnd('/')).ToArray();
    }

    private static IReadOnlyList<string> ReadAllowedHosts(Reader r)
    {
        const string key = "konsole.gateway.allowed-hosts";
        var hosts = r.StringList(key);
        foreach (var host in hosts)
        {
            if (Uri.CheckHostName(host.Trim('[', ']')) == UriHostNameType.Unknown)
            {
                var shown = MaskedUrl(host) ?? (host.LastIndexOf('@') is var at and >= 0 ? "***" + host[at..] : host); // user:password@host
                throw r.Error(key, $"holds '{shown}': each entry is a host name or address as a Host header names it, such as \"konsole.example\" (no scheme, port or path)");
            }
        }
        return hosts;
    }

    private static IReadOnlyDictionary<string, string> ReadEnvironment(Reader r)
    {
        const string key = "konsole.claude.environment";
        var value = r.Value(key);
        if (!value.IsObject())
            throw r.Error(key, "must be an object of NAME = \"value\" pairs");
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, item) in value.GetObject().Items)
        {
            if (ForbiddenEnvironment.Contains(name))
                throw r.Error($"{key}.{name}", "credentials are per account: set config-dir or api-key-env on the account instead");
            if (name.Length == 0 || name.Contains('=') || name.Contains('\0'))
                throw r.Error($"{key}.\"{name.Replace("\0", "\\0")}\"", "is not a variable name: a name is not empty and holds no '=' and no NUL");
            if (item.IsObject() || item.IsArray())
                throw r.Error($"{key}.{name}", "must be a string");
            var text = item.GetString(); // null (NAME = null) unsets the variable for the CLI
            if (text?.Contains('\0') == true)
                throw r.Error($"{key}.{name}", "must not hold a NUL character");
            environment[name] = text!;
        }
        return environment;
    }

    private static List<AccountSettings> ReadAccounts(Reader r, string dataDir)
    {
        const string key = "konsole.accounts";
        var value = r.Value(key);
        if (!Reader.IsList(value))
            throw r.Error(key, "must be a list of accounts");
        var accounts = new List<AccountSettings>();
        var items = value.GetArray();
        for (var i = 0; i < items.Count; i++)
        {
            var at = $"{key}[{i}]";
            if (!items[i].IsObject())
                throw r.Error(at, "must be an object such as { id = \"a\", config-dir = \"~/.claude-a\" }");
            var fields = items[i].GetObject().Items;
            foreach (var name in fields.Keys.Where(k => !AccountKeys.Contains(k)))
                throw r.Error($"{at}.{Named(name)}", $"unknown key (known: {string.Join(", ", AccountKeys)})");
            string? Field(string name)
            {
                if (!fields.TryGetValue(name, out var v))
                    return null;
                if (v.IsObject() || v.IsArray())
                    throw r.Error($"{at}.{name}", "must be a string");
                return r.WithoutNul($"{at}.{name}", v.GetString()) is { Length: > 0 } s ? s : null;
            }

            var id = Field("id") ?? throw r.Error($"{at}.id", "is required");
            if (!AccountId().IsMatch(id))
                throw r.Error($"{at}.id", $"'{id}' must be letters, digits, '-', '_' or '.', starting with a letter or digit");
            if (accounts.Any(a => a.Id == id))
                throw r.Error($"{at}.id", $"duplicate account id '{id}'");
            var configDir = Field("config-dir");
            var apiKeyEnv = Field("api-key-env");
            if (configDir is null && apiKeyEnv is null)
                throw r.Error(at, $"account '{id}' needs config-dir (an OAuth login) or api-key-env (the name of a variable holding an API key)");
            if (configDir is not null && apiKeyEnv is not null)
                throw r.Error(at, $"account '{id}' has config-dir and api-key-env: set one (an OAuth login, or an API key instead of it)");
            if (apiKeyEnv is not null && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(apiKeyEnv)))
                throw r.Error($"{at}.api-key-env", VariableName().IsMatch(apiKeyEnv)
                    ? $"environment variable '{apiKeyEnv}' is not set"
                    : "names no variable that is set, and is not shown: it may be the API key itself; give the name of the variable holding it");
            // An API-key account gets a config dir of its own, so it never picks up the user's own login.
            var dir = configDir is null ? Path.Combine(dataDir, "accounts", id) : ExpandPath(configDir);
            if (File.Exists(dir))
                throw r.Error($"{at}.config-dir", $"'{dir}' is a file, not a directory");
            // Two accounts on one login would each refresh its rotating token, and one of them then holds a spent one.
            var real = Posix.RealPath(dir);
            if (accounts.FirstOrDefault(a => Posix.RealPath(a.ConfigDir) == real) is { } same) // (a symbolic link is the same login)
                throw r.Error($"{at}.config-dir", $"'{dir}' is account '{same.Id}'s config dir too: each account needs a login of its own");
            var login = Posix.RealPath(Path.Combine(dir, AccountCredentials.FileName));
            if (accounts.FirstOrDefault(a => Posix.RealPath(Path.Combine(a.ConfigDir, AccountCredentials.FileName)) == login) is { } sharing)
                throw r.Error($"{at}.config-dir", $"'{dir}' holds the same {AccountCredentials.FileName} as account '{sharing.Id}' ({login}, " +
                    "through a symbolic link): each account needs a login of its own");
            accounts.Add(new AccountSettings(
                id,
                Field("label") ?? id,
                dir,
                apiKeyEnv,
                Field("tier"),
                Field("simulated") switch
                {
                    null or "false" or "off" or "no" => false,
                    "true" or "on" or "yes" => true,
                    var other => throw r.Error($"{at}.simulated", $"must be true or false, not '{other}'"),
                }));
        }
        if (accounts.Count == 0)
            accounts.Add(new AccountSettings("default", "default", ExpandPath("~/.claude"), null, null, CliDefaultLogin: true));
        return accounts;
    }

    /// <summary>An https URL, or http on this machine (a test's endpoint): refresh tokens never cross a network in the clear.</summary>
    private static string TokenEndpoint(Reader r)
    {
        const string key = "konsole.oauth.token-endpoint";
        var url = r.NonEmptyString(key);
        return Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback))
            ? url
            : throw r.Error(key, "must be an https URL (http only on loopback)" + (MaskedUrl(url) is { } shown ? $", not '{shown}'" : "; the value is not an absolute URL"));
    }

    /// <summary>
    /// A URL as a refusal may quote it: its user-info, query and fragment (a password, a client_secret) masked. Null for a value
    /// that is not an absolute URL with a host: nothing in it tells a credential from the rest, so it is not quoted.
    /// </summary>
    private static string? MaskedUrl(string value)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Host.Length == 0)
            return null;
        if (uri.UserInfo.Length == 0 && uri.Query.Length == 0 && uri.Fragment.Length == 0)
            return value; // as written (a default port it names, too)
        return $"{uri.Scheme}://{(uri.UserInfo.Length > 0 ? "***@" : "")}{uri.Authority}{uri.AbsolutePath}" +
            $"{(uri.Query.Length > 0 ? "?***" : "")}{(uri.Fragment.Length > 0 ? "#***" : "")}";
    }

    private static RoleSettings ResolveRoles(Reader r, List<AccountSettings> accounts)
    {
        string? Named(string key)
        {
            var id = r.String(key);
            if (id.Length == 0) return null;
            if (accounts.All(a => a.Id != id))
                throw r.Error(key, $"names no account: '{id}' (accounts: {string.Join(", ", accounts.Select(a => a.Id))})");
            return id;
        }
        var dashboard = Named("konsole.roles.dashboard");
        var quickTurn = Named("konsole.roles.quickturn");
        dashboard ??= accounts.Select(a => a.Id).FirstOrDefault(id => id != quickTurn) ?? accounts[0].Id;
        quickTurn ??= accounts.Select(a => a.Id).FirstOrDefault(id => id != dashboard) ?? dashboard;
        return new RoleSettings(dashboard, quickTurn);
    }

    private static string ResolveDataDir(string configured)
    {
        if (configured.Length > 0)
            return ExpandPath(configured);
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        return string.IsNullOrEmpty(xdg)
            ? ExpandPath("~/.local/share/konsole")
            : Path.Combine(xdg, "konsole");
    }

    private static string ExpandPath(string path)
    {
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
            path = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path[2..] : "");
        return Path.GetFullPath(path);
    }

    private static string ReadDefaults()
    {
        using var stream = typeof(KonsoleConfig).Assembly.GetManifestResourceStream("konsole.hocon")
            ?? throw new InvalidOperationException("the embedded konsole.hocon is missing from the build");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// Akka's HOCON parser accepts a missing or extra closing brace, which would half-apply a file:
    /// check that brackets balance, outside strings and comments.
    /// </summary>
    private static string? Unbalanced(string text)
    {
        var open = new Stack<(char Bracket, int Line, int Column)>();
        foreach (var (_, ch, line, column, unterminated) in Unquoted(text))
        {
            if (unterminated)
                return $"unterminated string at line {line}, column {column}";
            if (ch is '{' or '[')
                open.Push((ch, line, column));
            else if (ch is '}' or ']')
            {
                if (open.Count == 0 || open.Pop().Bracket != (ch == '}' ? '{' : '['))
                    return $"unexpected '{ch}' at line {line}, column {column}";
            }
        }
        return open.Count > 0 ? $"'{open.Peek().Bracket}' opened at line {open.Peek().Line}, column {open.Peek().Column} is never closed" : null;
    }

    /// <summary>
    /// The characters of <paramref name="text"/> outside its comments and quoted strings, with their line and column; a string
    /// never closed ends it, as its opening quote with <c>Unterminated</c>.
    /// </summary>
    private static IEnumerable<(int Index, char Char, int Line, int Column, bool Unterminated)> Unquoted(string text)
    {
        int line = 1, column = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var ch = text[i];
            column++;
            if (ch == '\n')
            {
                line++;
                column = 0;
            }
            else if (ch == '#' || (ch == '/' && i + 1 < text.Length && text[i + 1] == '/'))
            {
                while (i + 1 < text.Length && text[i + 1] != '\n') i++;
            }
            else if (ch == '"')
            {
                var triple = string.CompareOrdinal(text, i, "\"\"\"", 0, 3) == 0;
                var end = triple ? text.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal) : ClosingQuote(text, i);
                if (end < 0)
                {
                    yield return (i, ch, line, column, true);
                    yield break;
                }
                var lines = text.AsSpan(i, end - i).Count('\n');
                line += lines;
                column = lines > 0 ? end - text.LastIndexOf('\n', end) : column + end - i;
                i = end + (triple ? 2 : 0);
                column += triple ? 2 : 0;
            }
            else
                yield return (i, ch, line, column, false);
        }
    }

    private static int ClosingQuote(string text, int start)
    {
        for (var i = start + 1; i < text.Length && text[i] != '\n'; i++)
        {
            if (text[i] == '\\') i++;
            else if (text[i] == '"') return i;
        }
        return -1;
    }

    /// <summary>
    /// A key as a refusal names it. One with whitespace in it is most likely a key and its value with no '=' between them
    /// (<c>auth-token s3cret</c>): the value, maybe a secret, is left out.
    /// </summary>
    private static string Named(string key) =>
        key.IndexOfAny([' ', '\t', '\r', '\n']) is var at and >= 0 ? key[..at] + " <value without '='? not shown>" : key;

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    private static string Position(string text, string message) => Offset(text, message) is { } offset ? $" ({LineAndColumn(text, offset)})" : "";

    /// <summary>Where the parser stopped, when that is a ',' right after an object's '}' (HOCON allows it; Akka's parser does not).</summary>
    private static string? CommaAfterObject(string text, string message) =>
        Offset(text, message) is { } offset && offset < text.Length && text[offset] == ',' && text[..offset].TrimEnd().EndsWith('}')
            ? LineAndColumn(text, offset)
            : null;

    /// <summary>The offset into <paramref name="text"/> Akka's HOCON names in its message ("position N").</summary>
    private static int? Offset(string text, string message)
    {
        var match = Regex.Match(message, @"position (\d+)");
        return match.Success && int.TryParse(match.Groups[1].Value, out var offset) && offset <= text.Length ? offset : null;
    }

    private static string LineAndColumn(string text, int offset)
    {
        var before = text[..offset];
        return $"line {before.Count(ch => ch == '\n') + 1}, column {offset - before.LastIndexOf('\n')}";
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\z")]
    private static partial Regex AccountId();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*\z")]
    private static partial Regex VariableName();

    private const long MinLineBytes = 64 * 1024;

    /// <summary>Linq2Db's provider names for the drivers this build carries: Microsoft.Data.Sqlite, Npgsql, Microsoft.Data.SqlClient.</summary>
    private static readonly HashSet<string> Providers = typeof(LinqToDB.ProviderName)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.IsLiteral)
        .Select(f => (string)f.GetRawConstantValue()!)
        .Where(name => name is "SQLite.MS" or "SQLite" || name.StartsWith("PostgreSQL", StringComparison.Ordinal)
            || (name.StartsWith("SqlServer", StringComparison.Ordinal) && name != "SqlServerCe" && !name.EndsWith(".System", StringComparison.Ordinal)))
        .ToHashSet(StringComparer.Ordinal);

    /// <summary>Typed reads that name the file and key when a value has the wrong type.</summary>
    private sealed class Reader(Config config, string source)
    {
        public KonsoleConfigException Error(string key, string problem) => new($"{source}: {key} {problem}");

        // Akka's HOCON reports an empty list as neither array nor string.
        public static bool IsList(HoconValue value) => value.IsArray() || (!value.IsObject() && !value.IsString());

        public HoconValue Value(string key) => config.GetValue(key) ?? throw Error(key, "is missing");

        public string String(string key)
        {
            var value = Value(key);
            if (value.IsObject() || value.IsArray())
                throw Error(key, "must be a string");
            return WithoutNul(key, value.GetString()) ?? "";
        }

        // No setting takes one: no path, argument or header can hold it.
        public string? WithoutNul(string key, string? text) =>
            text?.Contains('\0') == true ? throw Error(key, "must not hold a NUL character") : text;

        public string NonEmptyString(string key) =>
            String(key) is { Length: > 0 } s ? s : throw Error(key, "must not be empty");

        public IReadOnlyList<string> StringList(string key)
        {
            var value = Value(key);
            if (!IsList(value) || value.GetArray().Any(v => !v.IsString()))
                throw Error(key, "must be a list of strings, e.g. [\"--model\", \"sonnet\"]");
            // Akka's HOCON reads null, quoted or not, as no string at all.
            return value.GetArray().Select(v => WithoutNul(key, v.GetString()) ?? throw Error(key, "holds null: each entry is a string")).ToArray();
        }

        // A bare number is a duration in milliseconds to Akka's HOCON: "turn-timeout = 600" would be 0.6s. It needs its unit.
        // Longer than any setting needs, and short enough for any date it is added to or taken from (a restart window of
        // 10,000,000 days failed the account on its first crash).
        private static readonly TimeSpan MaxDuration = TimeSpan.FromDays(365);

        public TimeSpan Duration(string key, TimeSpan? max = null) => Typed(key,
            $"a duration with its unit, such as 30s, 5m or 1h, at most {Shown(max ?? MaxDuration)}",
            v => double.TryParse(v.GetString(), CultureInfo.InvariantCulture, out _) ? throw new FormatException() : v.GetTimeSpan(),
            d => d > TimeSpan.Zero && d <= (max ?? MaxDuration));

        private static string Shown(TimeSpan most) => most.TotalHours < 48 ? $"{most.TotalHours:0.#}h" : $"{most.TotalDays:0.#}d";

        public long ByteSize(string key, long max = long.MaxValue) => Typed(key,
            max == long.MaxValue ? "a size such as 1048576 or 64MiB" : $"a size such as 1048576 or 64MiB, at most {max / 1024 / 1024}MiB",
            v => v.GetByteSize() ?? -1, b => b > 0 && b <= max);

        public int PositiveInt(string key) => Typed(key, "a positive whole number", v => v.GetInt(), n => n > 0);

        public double Fraction(string key) => Typed(key, "a number from 0 to 1", v => v.GetDouble(), d => d is >= 0 and <= 1);

        private static string Shown(HoconValue value) =>
            value.IsObject() ? "an object" : value.IsArray() ? "a list" : $"'{value}'";

        public T Typed<T>(string key, string expected, Func<HoconValue, T> read, Func<T, bool> valid)
        {
            var value = Value(key);
            T result;
            try
            {
                result = value.IsObject() || value.IsArray() ? throw new FormatException() : read(value);
            }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException or ConfigurationException or NotSupportedException)
            {
                throw Error(key, $"must be {expected} (got {Shown(value)})");
            }
            return valid(result) ? result : throw Error(key, $"must be {expected} (got {Shown(value)})");
        }
    }
}
