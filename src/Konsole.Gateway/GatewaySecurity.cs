using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Konsole.Actors.Configuration;
using Microsoft.AspNetCore.Http;

namespace Konsole.Gateway;

/// <summary>
/// Who may talk to the gateway: a bearer token (when configured) on every API path, Host headers naming this
/// gateway only (against DNS rebinding), and browser origins only when listed (against cross-site requests).
/// Built from <c>konsole.gateway</c> before anything starts; a setting it cannot honour is refused.
/// </summary>
public sealed partial class GatewaySecurity
{
    private static readonly string[] LoopbackNames = ["localhost", "127.0.0.1", "[::1]", "::1"];
    private static readonly string[] ProtectedPrefixes = ["/api", "/sessions", "/hot"];

    private readonly byte[]? _tokenHash;
    private readonly HashSet<string>? _allowedHosts; // null: any host (a wildcard bind without allowed-hosts)
    private readonly HashSet<string> _origins;

    private GatewaySecurity(string? token, HashSet<string>? allowedHosts, IEnumerable<string> origins, IReadOnlyList<string> urls)
    {
        Urls = urls;
        _tokenHash = token is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(token));
        _allowedHosts = allowedHosts;
        _origins = new HashSet<string>(origins, StringComparer.OrdinalIgnoreCase);
    }

    public bool RequiresToken => _tokenHash is not null;

    /// <summary>The URLs of <c>konsole.gateway.urls</c>, each checked.</summary>
    public IReadOnlyList<string> Urls { get; }

    /// <summary>
    /// Reads the token (<c>auth-token</c>, or the first line of <c>auth-token-file</c>) and checks the bind: a non-loopback
    /// address without a token is refused. Throws <see cref="KonsoleConfigException"/> saying what to change.
    /// </summary>
    public static GatewaySecurity From(GatewaySettings settings)
    {
        var token = ReadToken(settings);
        var hosts = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var anyHost = false;
        var urls = settings.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (urls.Length == 0)
            throw new KonsoleConfigException($"konsole.gateway.urls: '{settings.Urls}' names no URL: give one such as http://127.0.0.1:5080");
        foreach (var url in urls)
        {
            var host = HostOf(url) ?? throw new KonsoleConfigException($"konsole.gateway.urls: '{url}' is not a URL such as http://127.0.0.1:5080 " +
                "(http, a host and a port; no path: https needs a certificate, which konsole does not set up: put a TLS proxy in front)");
            if (IsLoopback(host))
                hosts.UnionWith(LoopbackNames);
            else if (token is null)
                throw new KonsoleConfigException(
                    $"konsole.gateway.urls: '{url}' is reachable from other machines, and no token protects it. " +
                    "Set konsole.gateway.auth-token (or auth-token-file), or bind to 127.0.0.1.");
            else if (host is "*" or "+" or "0.0.0.0" or "[::]" or "::")
                anyHost = true;
            else
                hosts.Add(host);
        }
        hosts.UnionWith(settings.AllowedHosts);
        return new GatewaySecurity(token, anyHost && settings.AllowedHosts.Count == 0 ? null : hosts, settings.CorsOrigins, urls);
    }

    /// <summary>The middleware: Host filter, then (on API paths) origin check and bearer token. Refusals are problem+json.</summary>
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var host = context.Request.Host.Host;
        if (_allowedHosts is not null && !_allowedHosts.Contains(host) && !_allowedHosts.Contains($"[{host}]"))
        {
            await Problems.Problem(context, StatusCodes.Status400BadRequest, "host_not_allowed",
                $"the Host header '{context.Request.Host}' does not name this gateway (konsole.gateway.allowed-hosts)").ExecuteAsync(context);
            return;
        }
        if (!ProtectedPrefixes.Any(p => context.Request.Path.StartsWithSegments(p)))
        {
            await next(context);
            return;
        }
        if (context.Request.Headers.Origin is [{ } origin] && !IsAllowedOrigin(context, origin))
        {
            await Problems.Problem(context, StatusCodes.Status403Forbidden, "origin_not_allowed",
                $"requests from the web page at {origin} are not allowed (konsole.gateway.cors-origins)").ExecuteAsync(context);
            return;
        }
        if (_tokenHash is not null && !HasToken(context.Request))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Problems.Problem(context, StatusCodes.Status401Unauthorized, "unauthorized",
                "this gateway needs 'Authorization: Bearer <token>' (konsole.gateway.auth-token)").ExecuteAsync(context);
            return;
        }
        await next(context);
    }

    private bool HasToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return false;
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, _tokenHash);
    }

    private bool IsAllowedOrigin(HttpContext context, string origin) =>
        _origins.Contains(origin.TrimEnd('/'))
        || string.Equals(origin, $"{context.Request.Scheme}://{context.Request.Host}", StringComparison.OrdinalIgnoreCase);

    private static string? ReadToken(GatewaySettings settings)
    {
        if (settings.AuthToken.Length > 0 && settings.AuthTokenFile.Length > 0)
            throw new KonsoleConfigException("konsole.gateway: set auth-token or auth-token-file, not both");
        if (settings.AuthToken.Length > 0)
            return settings.AuthToken.Trim() is { Length: > 0 } inline ? inline : throw new KonsoleConfigException("konsole.gateway.auth-token is blank");
        if (settings.AuthTokenFile.Length == 0)
            return null;
        string token;
        try
        {
            token = File.ReadLines(settings.AuthTokenFile).FirstOrDefault()?.Trim() ?? "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KonsoleConfigException($"konsole.gateway.auth-token-file: cannot read '{settings.AuthTokenFile}': {e.Message}");
        }
        return token.Length > 0 ? token : throw new KonsoleConfigException($"konsole.gateway.auth-token-file: '{settings.AuthTokenFile}' is empty");
    }

    private static string? HostOf(string url)
    {
        // Kestrel's wildcard forms are not valid URIs.
        var normalized = url.Replace("://*", "://wildcard.invalid").Replace("://+", "://wildcard.invalid");
        // A user part (http://x@127.0.0.1) reads as loopback here, while Kestrel takes "x@127.0.0.1" for no address and binds to all.
        if (!Uri.TryCreate(normalized, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.UserInfo.Length > 0)
            return null;
        if (uri.Host == "unix" && normalized.StartsWith("http://unix:/", StringComparison.OrdinalIgnoreCase))
            return uri.Host; // Kestrel's Unix socket, http://unix:/run/konsole.sock
        // Kestrel would take anything after host:port (a path, even "/%2e") as a path base for every endpoint.
        var afterScheme = normalized.IndexOf("://", StringComparison.Ordinal) + 3;
        var rest = normalized.IndexOfAny(['/', '?', '#', '%'], afterScheme);
        if (rest >= 0 && !(rest == normalized.Length - 1 && normalized[rest] == '/'))
            return null;
        // Without a port Kestrel would take 80, which nobody asked for.
        if (!PortAtEnd().IsMatch(normalized[afterScheme..(rest >= 0 ? rest : normalized.Length)]))
            return null;
        return uri.Host == "wildcard.invalid" ? "*" : uri.Host;
    }

    [GeneratedRegex(@":[0-9]{1,5}\z")]
    private static partial Regex PortAtEnd();

    private static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}
