using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Broker.Configuration;

namespace Broker.Security;

/// <summary>
/// Authentication by an HTTP service (<c>Auth:Http:Url</c>), the way EMQX's HTTP authenticator and VerneMQ's webhooks
/// do it: every CONNECT is POSTed as JSON
/// <code>{"action":"connect","clientId":"...","username":"...","password":"...","address":"10.0.0.7","certificateCn":"..."}</code>
/// and the service answers <c>200</c> with <c>{"result":"allow"}</c> (optionally <c>"username"</c>: the name the
/// client is known by for ACLs), <c>{"result":"deny"}</c>, or <c>{"result":"ignore"}</c>: the next authenticator (the
/// password file) decides. No answer within <c>Auth:Http:TimeoutSeconds</c>, another status, or an answer that does
/// not parse: refused when <c>Auth:Http:FailClosed</c> (the default), else the next authenticator decides. An allow is
/// remembered for <c>Auth:Http:CacheSeconds</c> (keyed by client id, username, a SHA-256 of the password, address
/// and certificate CN) so that a reconnect storm does not become a storm of requests; denials are not remembered.
/// </summary>
public sealed class HttpAuthenticator : IAuthenticator, IDisposable
{
    private const int MaxCacheEntries = 10_000;
    private readonly HttpAuthOptions _options;
    private readonly IAuthenticator _next;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<string, (long Until, AuthResult Result)> _allowed = new(StringComparer.Ordinal);

    public HttpAuthenticator(HttpAuthOptions options, IAuthenticator next)
    {
        _options = options;
        _next = next;
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(options.TimeoutSeconds) };
    }

    public async Task<AuthResult> AuthenticateAsync(AuthRequest request, CancellationToken cancellationToken)
    {
        var password = request.Password is { } p ? Encoding.UTF8.GetString(p.Span) : null;
        var key = CacheKey(request, password);
        if (_allowed.TryGetValue(key, out var cached) && Environment.TickCount64 < cached.Until)
        {
            return cached.Result;
        }

        Answer? answer;
        try
        {
            using var response = await _http.PostAsJsonAsync(_options.Url, new Question("connect",
                request.ClientId, request.Username, password, Host(request.RemoteAddress), request.CertificateSubject),
                cancellationToken).ConfigureAwait(false);
            answer = response.StatusCode == HttpStatusCode.OK
                ? await response.Content.ReadFromJsonAsync<Answer>(cancellationToken).ConfigureAwait(false)
                : null;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException or NotSupportedException)
        {
            answer = null;
        }

        switch (answer?.Result?.ToLowerInvariant())
        {
            case "allow":
                var result = new AuthResult(AuthOutcome.Allowed, answer.Username ?? request.Username);
                if (_options.CacheSeconds > 0 && _allowed.Count < MaxCacheEntries)
                {
                    _allowed[key] = (Environment.TickCount64 + (_options.CacheSeconds * 1000L), result);
                }

                return result;
            case "deny":
                return Refusal(request);
            case "ignore":
                return await _next.AuthenticateAsync(request, cancellationToken).ConfigureAwait(false);
            default:
                // Unreachable, too slow, another status, or an answer without a known result.
                return _options.FailClosed ? Refusal(request) : await _next.AuthenticateAsync(request, cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Wrong credentials (0x04 / 0x86) when some were given, else "not authorized" (0x05 / 0x87).</summary>
    private static AuthResult Refusal(AuthRequest request) =>
        request.Username is null && request.Password is null ? AuthResult.Refused : AuthResult.Bad;

    private static string CacheKey(AuthRequest r, string? password)
    {
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(password ?? "\0none")));
        return string.Join('\n', r.ClientId, r.Username ?? "\0", hash, Host(r.RemoteAddress) ?? "", r.CertificateSubject ?? "");
    }

    /// <summary>The client's IP address (IPv4 as such, not IPv4-mapped IPv6), without its port.</summary>
    private static string? Host(EndPoint? endPoint) => endPoint switch
    {
        IPEndPoint ip => (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString(),
        _ => endPoint?.ToString(),
    };

    private sealed record Question(
        [property: JsonPropertyName("action")] string Action,
        [property: JsonPropertyName("clientId")] string ClientId,
        [property: JsonPropertyName("username")] string? Username,
        [property: JsonPropertyName("password")] string? Password,
        [property: JsonPropertyName("address")] string? Address,
        [property: JsonPropertyName("certificateCn")] string? CertificateCn);

    private sealed record Answer(
        [property: JsonPropertyName("result")] string? Result,
        [property: JsonPropertyName("username")] string? Username);
}
