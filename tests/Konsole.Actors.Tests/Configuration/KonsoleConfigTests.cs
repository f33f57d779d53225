using Konsole.Actors.Configuration;
using Konsole.Testing;

namespace Konsole.Actors.Tests.Configuration;

public sealed class KonsoleConfigTests
{
    [Fact]
    public void The_embedded_defaults_run_one_default_account_on_the_users_own_login_in_both_roles()
    {
        var (_, settings) = KonsoleConfig.Load(null);

        var account = Assert.Single(settings.Accounts);
        Assert.Equal("default", account.Id);
        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".claude"), account.ConfigDir);
        Assert.True(account.CliDefaultLogin);
        // Its processes get no CLAUDE_CONFIG_DIR (the host's own is removed): the CLI reads the user's login where it does by default.
        var launch = Konsole.Actors.Accounts.CliLaunch.For(settings, account, Konsole.Actors.Prompts.ProcessMode.Full);
        Assert.True(launch.Environment.TryGetValue("CLAUDE_CONFIG_DIR", out var configDir));
        Assert.Null(configDir);
        Assert.Equal(new RoleSettings("default", "default"), settings.Roles);
        Assert.Equal("claude", settings.Claude.Path);
        Assert.Equal(64L * 1024 * 1024, settings.Claude.MaxLineBytes);
        Assert.Equal(TimeSpan.FromMinutes(10), settings.Claude.TurnTimeout);
        Assert.Equal(64, settings.QueueMaxDepth);
        Assert.Equal(TimeSpan.FromHours(1), settings.OAuth.RefreshThreshold);
        Assert.Equal("http://127.0.0.1:5080", settings.Gateway.Urls);
        Assert.Equal(1_048_576, settings.Gateway.MaxPromptBytes);
        Assert.Equal(TimeSpan.FromSeconds(15), settings.Gateway.KeepAlive);
        Assert.Equal((1, 10_000), (settings.Sessions.MaxWorkers, settings.Sessions.ReplayBuffer));
        Assert.Empty(settings.Gateway.CorsOrigins);
    }

    [Fact]
    public void The_contracts_example_file_loads_with_first_account_dashboard_and_second_quickturn()
    {
        var (_, settings) = KonsoleConfig.Parse("""
            konsole {
              accounts = [
                { id = "meichtry", label = "meichtry.com", config-dir = "/home/me/.claude-meichtry", tier = "20x" }
                { id = "blueboy",  label = "blueboy.technology", config-dir = "/home/me/.claude-blueboy", tier = "20x" }
              ]
              roles { dashboard = "", quickturn = "" }
              queue { max-depth = 8 }
              claude { extra-args = ["--model", "sonnet"], environment { ANTHROPIC_BASE_URL = "http://127.0.0.1:9" } }
            }
            """);

        Assert.Equal(["meichtry", "blueboy"], settings.Accounts.Select(a => a.Id));
        Assert.Equal(new AccountSettings("meichtry", "meichtry.com", "/home/me/.claude-meichtry", null, "20x"), settings.Accounts[0]);
        Assert.Equal(new RoleSettings("meichtry", "blueboy"), settings.Roles);
        Assert.Equal(8, settings.QueueMaxDepth);
        Assert.Equal(["--model", "sonnet"], settings.Claude.ExtraArgs);
        Assert.Equal("http://127.0.0.1:9", settings.Claude.Environment["ANTHROPIC_BASE_URL"]);
    }

    [Fact]
    public void Named_roles_win_and_an_unnamed_role_takes_another_account()
    {
        var (_, settings) = KonsoleConfig.Parse("""
            konsole {
              accounts = [
                { id = a, config-dir = "/tmp/a" }
                { id = b, config-dir = "/tmp/b" }
                { id = c, config-dir = "/tmp/c" }
              ]
              roles.dashboard = c
            }
            """);

        Assert.Equal(new RoleSettings("c", "a"), settings.Roles);
    }

    [Fact]
    public void Settings_print_without_the_gateway_token_or_the_connection_string()
    {
        // Akka logs an actor's Props arguments (these settings among them) when its constructor throws.
        var (_, settings) = KonsoleConfig.Parse("""
            konsole.gateway.auth-token = "gw-token-5d1e7a0b9c"
            konsole.persistence { provider = "PostgreSQL.15", connection-string = "Host=db;Username=k;Password=pg-secret-77" }
            """);

        var printed = settings.ToString();

        Assert.DoesNotContain("gw-token-5d1e7a0b9c", printed);
        Assert.DoesNotContain("pg-secret-77", printed);
        Assert.Contains("AuthToken = (not shown)", printed);
        Assert.Contains("Provider = PostgreSQL.15", printed);
    }

    [Fact]
    public void An_api_key_account_gets_a_config_dir_of_its_own_under_the_data_dir()
    {
        using var key = EnvironmentScope.Set(("KONSOLE_TEST_KEY_PRESENT", "sk-ant-api-xyz"));
        var (_, settings) = KonsoleConfig.Parse("""
            konsole { data-dir = "/tmp/konsole-data", accounts = [ { id = k, api-key-env = "KONSOLE_TEST_KEY_PRESENT" } ] }
            """);

        Assert.Equal(new AccountSettings("k", "k", "/tmp/konsole-data/accounts/k", "KONSOLE_TEST_KEY_PRESENT", null), settings.Accounts[0]);
    }

    [Fact]
    public void No_accounts_process_inherits_an_api_key_variable_its_own_key_reaching_it_as_anthropic_api_key()
    {
        using var keys = EnvironmentScope.Set(("KONSOLE_TEST_KEY_A", "sk-ant-api-aaa"), ("KONSOLE_TEST_KEY_B", "sk-ant-api-bbb"));
        var (_, settings) = KonsoleConfig.Parse("""
            konsole.accounts = [
              { id = a, api-key-env = "KONSOLE_TEST_KEY_A" }
              { id = b, api-key-env = "KONSOLE_TEST_KEY_B" }
              { id = c, config-dir = "/tmp/konsole-c" }
            ]
            """);

        foreach (var account in settings.Accounts)
        {
            var environment = Konsole.Actors.Accounts.CliLaunch.For(settings, account, Konsole.Actors.Prompts.ProcessMode.Full).Environment;
            // Null: CliWrap removes the variable from what the process inherits.
            Assert.Null(environment["KONSOLE_TEST_KEY_A"]);
            Assert.Null(environment["KONSOLE_TEST_KEY_B"]);
            Assert.Equal(account.Id switch { "a" => "sk-ant-api-aaa", "b" => "sk-ant-api-bbb", _ => null }, environment["ANTHROPIC_API_KEY"]);
        }
    }

    [Theory]
    [InlineData("konsole.claude.pth = x", "unknown key 'konsole.claude.pth'")]
    [InlineData("konsole.gatway { urls = x }", "unknown key 'konsole.gatway'")]
    [InlineData("konsol { }", "unknown key 'konsol'")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\", colour = red } ]", "konsole.accounts[0].colour unknown key")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\" }\n { id = a, config-dir = \"/b\" } ]", "konsole.accounts[1].id duplicate account id 'a'")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\" }\n { id = b, config-dir = \"/a/\" } ]", "konsole.accounts[1].config-dir '/a/' is account 'a's config dir too")]
    [InlineData("konsole.accounts = [ { label = x, config-dir = \"/a\" } ]", "konsole.accounts[0].id is required")]
    [InlineData("konsole.oauth.token-endpoint = \"http://auth.example.com/token\"", "konsole.oauth.token-endpoint must be an https URL (http only on loopback)")]
    [InlineData("konsole.oauth.token-endpoint = \"not a url\"", "konsole.oauth.token-endpoint must be an https URL")]
    [InlineData("akka.log-config-on-start = on\nkonsole.persistence { provider = \"PostgreSQL.15\", connection-string = \"Host=db;Password=p\" }",
        "akka.log-config-on-start would write")]
    [InlineData("konsole.accounts = [ { id = \"../x\", config-dir = \"/a\" } ]", "konsole.accounts[0].id '../x' must be")]
    [InlineData("konsole.accounts = [ { id = a } ]", "account 'a' needs config-dir")]
    [InlineData("konsole.accounts = [ { id = a, api-key-env = KONSOLE_TEST_KEY_ABSENT } ]", "environment variable 'KONSOLE_TEST_KEY_ABSENT' is not set")]
    [InlineData("konsole.accounts = x", "konsole.accounts must be a list")]
    [InlineData("konsole.roles.dashboard = nobody", "konsole.roles.dashboard names no account: 'nobody'")]
    [InlineData("konsole.queue.max-depth = lots", "konsole.queue.max-depth must be a positive whole number")]
    [InlineData("konsole.queue.max-depth = 0", "konsole.queue.max-depth must be a positive whole number")]
    [InlineData("konsole.claude.turn-timeout = soon", "konsole.claude.turn-timeout must be a duration")]
    [InlineData("konsole.gateway.keep-alive = 15", "konsole.gateway.keep-alive must be a duration with its unit, such as 30s, 5m or 1h, at most 1h (got '15')")]
    [InlineData("konsole.shutdown.drain-timeout = 100d", "konsole.shutdown.drain-timeout must be a duration with its unit, such as 30s, 5m or 1h, at most 24h")]
    [InlineData("konsole.claude.turn-timeout = 600", "konsole.claude.turn-timeout must be a duration with its unit, such as 30s, 5m or 1h, at most 365d (got '600')")] // was 0.6s
    [InlineData("konsole.claude.turn-timeout { a = 1 }", "konsole.claude.turn-timeout must be a duration with its unit, such as 30s, 5m or 1h, at most 365d (got an object)")]
    [InlineData("konsole.claude.restart.window = 10000000d", "konsole.claude.restart.window must be a duration with its unit, such as 30s, 5m or 1h, at most 365d (got '10000000d')")] // failed the account at its first crash
    [InlineData("konsole.oauth { retry-min-backoff = 10m\n retry-max-backoff = 1s }", "konsole.oauth.retry-max-backoff must not be shorter than retry-min-backoff")]
    [InlineData("konsole.claude.max-line-bytes = 1", "konsole.claude.max-line-bytes must be at least 64KiB")]
    [InlineData("konsole.claude.working-directory = \"/nonexistent/wd\"", "konsole.claude.working-directory '/nonexistent/wd' is not a directory")]
    [InlineData("konsole.claude.working-directory = \"/etc/passwd\"", "konsole.claude.working-directory '/etc/passwd' is not a directory")]
    [InlineData("konsole.claude.environment { \"A=B\" = x }", "konsole.claude.environment.\"A=B\" is not a variable name")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\", api-key-env = KONSOLE_TEST_KEY_PRESENT } ]", "konsole.accounts[0] account 'a' has config-dir and api-key-env: set one")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/etc/passwd\" } ]", "konsole.accounts[0].config-dir '/etc/passwd' is a file, not a directory")]
    [InlineData("konsole.gateway.allowed-hosts = [\"http://example.com:80/x\"]", "konsole.gateway.allowed-hosts holds 'http://example.com:80/x': each entry is a host name")]
    [InlineData("konsole.persistence { provider = \"Bogus.1\", connection-string = \"x=y\" }", "konsole.persistence.provider 'Bogus.1' is not a database konsole has a driver for")] // was a start that never became ready
    [InlineData("konsole.persistence.provider = sqlite", "konsole.persistence.provider 'sqlite' is not a database konsole has a driver for")] // likewise
    [InlineData("konsole.persistence { provider = \"PostgreSQL.15\", connection-string = \"garbage\" }", "konsole.persistence.connection-string is not a PostgreSQL.15 connection string")] // likewise
    [InlineData("konsole.persistence { provider = \"SqlServer.2022\", connection-string = \"Server=x;Colour=red\" }", "konsole.persistence.connection-string is not a SqlServer.2022 connection string")]
    [InlineData("konsole.gateway.auth-token = \"   \"", "konsole.gateway.auth-token is blank")] // was no token
    [InlineData("konsole.gateway.allowed-hosts = [\"\"]", "konsole.gateway.allowed-hosts holds '': each entry is a host name")]
    [InlineData("konsole.claude.extra-args = \"--model x\"", "konsole.claude.extra-args must be a list of strings")]
    [InlineData("konsole.claude.extra-args = [null]", "konsole.claude.extra-args holds null: each entry is a string")] // was an account failed at run time
    [InlineData("konsole.gateway.allowed-hosts = [\"null\"]", "konsole.gateway.allowed-hosts holds null")] // was a NullReferenceException
    [InlineData("konsole.data-dir = \"/tmp/a\\u0000b\"", "konsole.data-dir must not hold a NUL character")] // was an ArgumentException
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\\u0000\" } ]", "konsole.accounts[0].config-dir must not hold a NUL character")]
    [InlineData("konsole.claude.extra-args = [\"a\\u0000\"]", "konsole.claude.extra-args must not hold a NUL character")]
    [InlineData("konsole.claude.path = \"\"", "konsole.claude.path must not be empty")]
    [InlineData("konsole.claude.path = [a]", "konsole.claude.path must be a string")]
    [InlineData("konsole.claude.environment { ANTHROPIC_API_KEY = x }", "konsole.claude.environment.ANTHROPIC_API_KEY credentials are per account")]
    [InlineData("konsole.claude.restart.random-factor = 3", "random-factor must be a number from 0 to 1")]
    [InlineData("konsole.claude.restart { min-backoff = 10s\n max-backoff = 1s }", "max-backoff must not be shorter than min-backoff")]
    [InlineData("konsole.claude.max-line-bytes = 3GiB", "konsole.claude.max-line-bytes must be at most 2147483591 bytes (2 GiB)")]
    [InlineData("konsole { claude { path = x } } }", "malformed HOCON: unexpected '}' at line 1, column 33")]
    [InlineData("konsole {\n claude { path = x }\n", "malformed HOCON: '{' opened at line 1, column 9 is never closed")]
    [InlineData("konsole.claude.path = \"unterminated", "malformed HOCON: unterminated string at line 1")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\" } }", "malformed HOCON: unexpected '}'")]
    [InlineData("konsole { gateway { max-streams = 10 }, queue { max-depth = 5 } }", "malformed HOCON: ',' after an object's '}' at line 1, column 39: Akka's HOCON does not take one there; end the field with a new line instead")]
    [InlineData("konsole { gateway { max-streams = 10 }\n  , queue { max-depth = 5 } }", "malformed HOCON: ',' after an object's '}' at line 2, column 3")]
    [InlineData("konsole.queue.max-depth = ${?KONSOLE_TEST_DEPTH}", "${?KONSOLE_TEST_DEPTH} (line 1, column 27): substitutions are not supported")] // was a stack overflow
    [InlineData("konsole.gateway.auth-token = ${HOME}", "${HOME} (line 1, column 30): substitutions are not supported")]
    [InlineData("x = 5\nkonsole.queue.max-depth = ${x}", "${x} (line 2, column 27): substitutions are not supported")]
    [InlineData("include \"other.conf\"", "include \"other.conf\" is not supported")] // was a NullReferenceException
    [InlineData("akka.loglevel = LOUD", "akka.loglevel must be one of DEBUG, INFO, WARNING, ERROR or OFF (got 'LOUD')")]
    [InlineData("akka.actor.serializers.konsole = \"No.Such.Type, Nowhere\"", "akka.actor.serializers \"konsole\" is konsole's own")] // was two warnings, and the journal on Akka's default serializer
    [InlineData("akka.actor.serialization-bindings { \"Konsole.Actors.Durability.IDurableEvent, Konsole.Actors\" = json }", "akka.actor.serialization-bindings \"Konsole.Actors.Durability.IDurableEvent, Konsole.Actors\" is konsole's own")]
    [InlineData("akka.log-config-on-start = maybe", "akka.log-config-on-start must be on or off (got 'maybe')")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\", label = { x = 1 } } ]", "konsole.accounts[0].label must be a string")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\", tier = [1] } ]", "konsole.accounts[0].tier must be a string")]
    [InlineData("konsole.accounts = [ { id = { x = 1 }, config-dir = \"/a\" } ]", "konsole.accounts[0].id must be a string")]
    [InlineData("konsole.accounts = [ { id = a, config-dir = \"/a\", simulated = maybe } ]", "konsole.accounts[0].simulated must be true or false, not 'maybe'")]
    [InlineData("konsole.roles = 5", "konsole.roles must be an object { dashboard = ..., quickturn = ... }")]
    [InlineData("konsole.queue = x", "konsole.queue must be an object { max-depth = ... }")]
    [InlineData("konsole.claude.environment { CLAUDECODE = \"1\" }", "konsole.claude.environment.CLAUDECODE credentials are per account")]
    [InlineData("konsole.gateway.cors-origins = [\"*\"]", "konsole.gateway.cors-origins holds a value that is not an absolute URL: each origin is a scheme, host and port such as \"http://localhost:3000\", never a wildcard")]
    [InlineData("konsole.gateway.cors-origins = [\"https://*.example\"]", "konsole.gateway.cors-origins holds a value that is not an absolute URL: each origin is a scheme, host and port such as \"http://localhost:3000\", never a wildcard")]
    public void Bad_configuration_is_refused_naming_the_file_and_key(string hocon, string expected)
    {
        var error = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Parse(hocon, "/etc/me.hocon"));

        Assert.StartsWith("/etc/me.hocon: ", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData("konsole.gateway { auth-token = \"\", auth-token-file = \"\" }")]
    [InlineData("konsole.gateway { auth-token = \"\" }")] // the space before the brace is a literal of its own to Akka's HOCON
    [InlineData("konsole.gateway.auth-token = \"\"   # none\n")]
    [InlineData("konsole.gateway.auth-token = \"\"\t\n")]
    public void An_empty_token_as_the_contract_shows_it_means_none(string hocon)
    {
        var (_, settings) = KonsoleConfig.Parse(hocon);

        Assert.Equal("", settings.Gateway.AuthToken);
    }

    [Theory]
    [InlineData("PostgreSQL.15", "Host=h;Password=p@ss;w0rd=x", "w0rd")] // an unquoted ';' in a password: the rest reads as a keyword
    [InlineData("SqlServer.2022", "Server=h;Password=hunter2;secret=x", "secret")]
    [InlineData("SQLite.MS", "Data Source=x.db;Password=hun;ter2=y", "ter2")]
    [InlineData("SQLite.MS", "Data Source=x.db;Default Timeout=99999999999", "99999999999")] // was an OverflowException, exit 134
    public void A_connection_string_its_driver_refuses_is_refused_without_any_of_it_in_the_message(string provider, string connection, string secret)
    {
        var error = Assert.Throws<KonsoleConfigException>(() =>
            KonsoleConfig.Parse($"konsole.persistence {{ provider = \"{provider}\", connection-string = \"{connection}\" }}"));

        Assert.Contains($"konsole.persistence.connection-string is not a {provider} connection string", error.Message);
        Assert.DoesNotContain(secret, error.Message);
    }

    [Theory]
    [InlineData("konsole.gateway { auth-token tok-8c1f27 }", "konsole.gateway.auth-token")]
    [InlineData("konsole.gateway.auth-token tok-8c1f27\nkonsole.queue.max-depth = 3", "konsole.gateway.auth-token")]
    [InlineData("auth-token tok-8c1f27", "unknown key 'auth-token")]
    [InlineData("konsole.accounts = [ { id = a, api-key-env tok-8c1f27 } ]", "konsole.accounts[0].api-key-env")]
    public void A_value_written_without_its_equals_sign_is_not_quoted_with_the_unknown_key_it_makes(string hocon, string key)
    {
        var error = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Parse(hocon));

        Assert.Contains(key, error.Message);
        Assert.DoesNotContain("tok-8c1f27", error.Message);
    }

    [Theory]
    [InlineData("konsole.oauth.token-endpoint = \"http://client:pw-4e7a19@auth.example/token?client_secret=cs-93b2d1#f\"",
        "konsole.oauth.token-endpoint must be an https URL (http only on loopback), not 'http://***@auth.example/token?***#***'")]
    [InlineData("konsole.oauth.token-endpoint = \"client:pw-4e7a19@auth.example/token?client_secret=cs-93b2d1\"",
        "konsole.oauth.token-endpoint must be an https URL (http only on loopback); the value is not an absolute URL")]
    [InlineData("konsole.oauth.token-endpoint = \"pw-4e7a19 cs-93b2d1\"",
        "konsole.oauth.token-endpoint must be an https URL (http only on loopback); the value is not an absolute URL")]
    [InlineData("konsole.gateway.cors-origins = [\"https://ui:pw-4e7a19@ui.example/?k=cs-93b2d1\"]",
        "konsole.gateway.cors-origins holds 'https://***@ui.example/?***': each origin is")]
    [InlineData("konsole.gateway.cors-origins = [\"ui:pw-4e7a19@ui.example\"]",
        "konsole.gateway.cors-origins holds a value that is not an absolute URL: each origin is")]
    [InlineData("konsole.gateway.allowed-hosts = [\"https://ui:pw-4e7a19@konsole.example/?k=cs-93b2d1\"]",
        "konsole.gateway.allowed-hosts holds 'https://***@konsole.example/?***': each entry is")]
    [InlineData("konsole.gateway.allowed-hosts = [\"ui:pw-4e7a19@konsole.example\"]",
        "konsole.gateway.allowed-hosts holds '***@konsole.example': each entry is")]
    public void A_url_is_quoted_in_a_refusal_without_its_user_info_query_or_fragment(string hocon, string expected)
    {
        var error = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Parse(hocon));

        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain("pw-4e7a19", error.Message);
        Assert.DoesNotContain("cs-93b2d1", error.Message);
    }

    [Theory]
    [InlineData("sk-ant-api03-Zq81kL0pXw")]
    [InlineData("proxy-5d1e0b7c93a2f4")]
    public void An_api_key_written_where_the_name_of_its_variable_belongs_is_not_quoted(string key)
    {
        var error = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Parse($"konsole.accounts = [ {{ id = a, api-key-env = \"{key}\" }} ]"));

        Assert.Contains("konsole.accounts[0].api-key-env", error.Message);
        Assert.DoesNotContain(key, error.Message);
    }

    [Fact]
    public void A_config_dir_that_is_a_symbolic_link_to_another_accounts_is_that_accounts_login_too()
    {
        var root = Directory.CreateTempSubdirectory("konsole-link-");
        try
        {
            var real = Directory.CreateDirectory(Path.Combine(root.FullName, "login")).FullName;
            var link = Path.Combine(root.FullName, "login-link");
            Directory.CreateSymbolicLink(link, real);

            var error = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Parse(
                $"konsole.accounts = [ {{ id = a, config-dir = \"{real}\" }}\n {{ id = b, config-dir = \"{link}\" }} ]", "/etc/me.hocon"));

            Assert.Equal($"/etc/me.hocon: konsole.accounts[1].config-dir '{link}' is account 'a's config dir too: each account needs a login of its own", error.Message);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_config_dir_whose_credentials_file_is_a_symbolic_link_to_another_accounts_is_that_accounts_login_too()
    {
        var root = Directory.CreateTempSubdirectory("konsole-link-");
        try
        {
            var a = Directory.CreateDirectory(Path.Combine(root.FullName, "a")).FullName;
            var b = Directory.CreateDirectory(Path.Combine(root.FullName, "b")).FullName;
            var login = Path.Combine(a, ".credentials.json");
            File.WriteAllText(login, "{}");
            File.CreateSymbolicLink(Path.Combine(b, ".credentials.json"), login);

            var error = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Parse(
                $"konsole.accounts = [ {{ id = a, config-dir = \"{a}\" }}\n {{ id = b, config-dir = \"{b}\" }} ]", "/etc/me.hocon"));

            Assert.Equal($"/etc/me.hocon: konsole.accounts[1].config-dir '{b}' holds the same .credentials.json as account 'a' ({login}, through a " +
                "symbolic link): each account needs a login of its own", error.Message);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void Values_that_read_oddly_but_work_are_taken()
    {
        var (_, settings) = KonsoleConfig.Parse("""
            konsole.persistence.provider = "SQLite"
            konsole.claude.environment { UNSET_ME = null }
            """);

        Assert.Equal("SQLite", settings.Persistence.Provider); // Linq2Db takes it for SQLite.MS
        Assert.True(settings.Claude.Environment.TryGetValue("UNSET_ME", out var value) && value is null); // removed from the CLI's environment
    }

    [Fact]
    public void Brackets_inside_strings_and_comments_do_not_count()
    {
        var (_, settings) = KonsoleConfig.Parse(""""
            # a comment with { and [
            // another one }
            konsole.claude.chat-system-prompt = "braces { and } and \" quotes ]"
            konsole.claude.extra-args = [ "--x", """{ triple [ x""" ]
            """");

        Assert.Equal("braces { and } and \" quotes ]", settings.Claude.ChatSystemPrompt);
        Assert.Equal(["--x", "{ triple [ x"], settings.Claude.ExtraArgs);
    }

    [Fact]
    public void Overrides_are_made_from_the_files_data_dir_and_its_values_are_checked_with_them_over_it()
    {
        using var sandbox = KonsoleSandbox.Create(0);
        var file = Path.Combine(sandbox.Root, "k.hocon");
        // Alone it is refused: its account needs a config dir, its role names an account it does not have.
        File.WriteAllText(file, $"konsole {{ data-dir = \"{sandbox.DataDir}\", accounts = [ {{ id = a }} ], roles.dashboard = o }}");

        var (_, settings) = KonsoleConfig.Load(file, dataDir => $"konsole.accounts = [ {{ id = o, config-dir = \"{dataDir}/o\" }} ]");

        Assert.Equal(Path.Combine(sandbox.DataDir, "o"), settings.Accounts.Single().ConfigDir);
        Assert.Equal("o", settings.Roles.Dashboard);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var error = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Load("/nonexistent/k.hocon"));

        Assert.Equal("/nonexistent/k.hocon: configuration file not found", error.Message);
    }

    [Fact]
    public void A_file_that_cannot_be_read_is_named_with_the_reason()
    {
        if (!OperatingSystem.IsLinux())
            return;
        // Exists, and no read of it succeeds, even as root (unlike a file without read permission).
        var error = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Load("/proc/self/mem"));

        Assert.StartsWith("/proc/self/mem: cannot read the configuration file: ", error.Message);
    }

    [Fact]
    public void The_cli_path_may_start_at_home_and_a_bare_name_stays_one_for_PATH()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

        Assert.Equal(Path.Combine(home, "bin/claude"), KonsoleConfig.Parse("konsole.claude.path = \"~/bin/claude\"").Settings.Claude.Path);
        Assert.Equal("claude", KonsoleConfig.Parse("konsole.claude.path = claude").Settings.Claude.Path);
    }

    [Fact]
    public void A_substitution_is_pointed_at_where_it_is_never_at_a_string_holding_the_same_characters()
    {
        var refused = Assert.Throws<KonsoleConfigException>(() => KonsoleConfig.Parse(
            "# ${in a comment}\nkonsole.gateway.auth-token = \"s3${cr3t\" # \"${\"\nkonsole.queue.max-depth = ${?KONSOLE_DEPTH}", "me.hocon"));

        Assert.StartsWith("me.hocon: ${?KONSOLE_DEPTH} (line 3, column 27): substitutions are not supported", refused.Message);
        Assert.DoesNotContain("s3", refused.Message);
    }

    [Fact]
    public void The_gateway_token_file_may_start_at_home_as_the_readme_shows_it()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

        Assert.Equal(Path.Combine(home, ".config/konsole/token"),
            KonsoleConfig.Parse("konsole.gateway.auth-token-file = \"~/.config/konsole/token\"").Settings.Gateway.AuthTokenFile);
        Assert.Equal("", KonsoleConfig.Parse("konsole.gateway.urls = \"http://127.0.0.1:5080\"").Settings.Gateway.AuthTokenFile);
    }

    [Fact]
    public void Akka_settings_pass_through_and_the_merged_config_carries_them()
    {
        var (config, _) = KonsoleConfig.Parse("akka.loglevel = DEBUG");

        Assert.Equal("DEBUG", config.GetString("akka.loglevel"));
        Assert.Equal("claude", config.GetString("konsole.claude.path"));
    }

    [Theory]
    [InlineData(1, 0.5, 100)]
    [InlineData(2, 0.5, 200)]
    [InlineData(4, 0.5, 800)]
    [InlineData(10, 0.5, 1000)]
    [InlineData(1, 0.0, 80)]
    [InlineData(1, 1.0, 120)]
    public void Backoff_doubles_up_to_the_cap_with_jitter(int attempt, double random, double expectedMs)
    {
        var backoff = new BackoffSettings(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1), 0.2, 10, TimeSpan.FromMinutes(5));

        Assert.Equal(expectedMs, backoff.Delay(attempt, random).TotalMilliseconds, precision: 6);
    }
}
