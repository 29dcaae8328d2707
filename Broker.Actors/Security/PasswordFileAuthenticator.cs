using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Broker.Security;

/// <summary>
/// The built-in authenticator:
/// <list type="number">
/// <item>a verified TLS client certificate with Auth:UseCertificateSubjectAsUsername: allowed as its CN;</item>
/// <item>no username: allowed (anonymous) only when anonymous clients are;</item>
/// <item>a username: checked against the password file (PBKDF2, on a thread-pool thread); with no password file
/// configured, a username is accepted unchecked when anonymous clients are allowed (as Mosquitto does).</item>
/// </list>
/// A successful check is remembered for <see cref="CacheTime"/> (keyed by user, a SHA-256 of the password and the
/// stored hash, so a password change ends it), because a reconnect storm would otherwise spend its time hashing.
/// Failures are never cached: the connection actor slows repeated failures down instead.
/// </summary>
public sealed class PasswordFileAuthenticator : IAuthenticator
{
    public static readonly TimeSpan CacheTime = TimeSpan.FromSeconds(60);
    private const int MaxCacheEntries = 10_000;
    private readonly ReloadingFile<PasswordFile>? _file;
    private readonly bool _allowAnonymous;
    private readonly bool _certificateAsUsername;
    private readonly ConcurrentDictionary<string, long> _verified = new(StringComparer.Ordinal);

    public PasswordFileAuthenticator(ReloadingFile<PasswordFile>? file, bool allowAnonymous, bool certificateAsUsername)
    {
        _file = file;
        _allowAnonymous = allowAnonymous;
        _certificateAsUsername = certificateAsUsername;
    }

    public Task<AuthResult> AuthenticateAsync(AuthRequest request, CancellationToken cancellationToken)
    {
        if (_certificateAsUsername && request.CertificateSubject is { } subject)
        {
            return Task.FromResult(new AuthResult(AuthOutcome.Allowed, subject));
        }

        if (request.Username is null)
        {
            // MQTT 3.1.1 cannot send a password without a username [MQTT-3.1.2-22]; v5 can, but it identifies no one.
            return Task.FromResult(_allowAnonymous && request.Password is null
                ? new AuthResult(AuthOutcome.Allowed, null)
                : request.Password is null ? AuthResult.Refused : AuthResult.Bad);
        }

        if (_file is null)
        {
            return Task.FromResult(_allowAnonymous ? new AuthResult(AuthOutcome.Allowed, request.Username) : AuthResult.Bad);
        }

        if (!_file.Current.Users.TryGetValue(request.Username, out var stored) || request.Password is not { } password)
        {
            return Task.FromResult(AuthResult.Bad);
        }

        var key = CacheKey(request.Username, password.Span, stored);
        if (_verified.TryGetValue(key, out var until) && Environment.TickCount64 < until)
        {
            return Task.FromResult(new AuthResult(AuthOutcome.Allowed, request.Username));
        }

        var user = request.Username;
        return Task.Run(() =>
        {
            if (!PasswordHasher.Verify(password.Span, stored))
            {
                return AuthResult.Bad;
            }

            if (_verified.Count >= MaxCacheEntries)
            {
                _verified.Clear();
            }

            _verified[key] = Environment.TickCount64 + (long)CacheTime.TotalMilliseconds;
            return new AuthResult(AuthOutcome.Allowed, user);
        }, cancellationToken);
    }

    private static string CacheKey(string user, ReadOnlySpan<byte> password, string stored)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(password, digest);
        return string.Concat(user, "\n", Convert.ToBase64String(digest), "\n", stored);
    }
}
