using Akka.Event;
using Broker.Configuration;

namespace Broker.Security;

/// <summary>
/// A node's security state, shared by its connection actors: the authenticator, the ACL (null when no ACL file is
/// configured: everything is allowed), the per-address failure throttle, and the reloading password and ACL files.
/// </summary>
public sealed class BrokerSecurity : IDisposable
{
    private readonly ReloadingFile<PasswordFile>? _passwords;
    private readonly ReloadingFile<AclFile>? _acl;
    private HttpAuthenticator? _http; // created here from Auth:Http, so disposed here

    private BrokerSecurity(IAuthenticator authenticator, ReloadingFile<PasswordFile>? passwords, ReloadingFile<AclFile>? acl,
        bool allowAnonymous, string anonymousReason)
    {
        Authenticator = authenticator;
        _passwords = passwords;
        _acl = acl;
        AllowAnonymous = allowAnonymous;
        AnonymousReason = anonymousReason;
    }

    /// <summary>Everything allowed, no files: for tests of other areas that build a context by hand.</summary>
    public static BrokerSecurity Open { get; } =
        new(new PasswordFileAuthenticator(null, allowAnonymous: true, certificateAsUsername: false), null, null, true, "open");

    public IAuthenticator Authenticator { get; }

    public AuthFailureThrottle Throttle { get; } = new();

    public bool AllowAnonymous { get; }

    public string AnonymousReason { get; }

    /// <summary>The ACL in force, or null when no Auth:AclFile is configured.</summary>
    public AclFile? Acl => _acl?.Current;

    /// <summary>The HTTP ACL service (Auth:Http:AclUrl), or null when none is configured.</summary>
    public HttpAuthorizer? HttpAcl { get; private init; }

    /// <summary>Changes with every ACL reload; connection actors keep their cached decisions while it stays the same.</summary>
    public int AclVersion => _acl?.Version ?? 0;

    /// <summary>
    /// Reads the configured files (an error names the key and the line) and picks the anonymous policy.
    /// <paramref name="authenticator"/> replaces the password file check (an HTTP or database authenticator).
    /// </summary>
    public static BrokerSecurity Create(BrokerOptions options, ILoggingAdapter log, IAuthenticator? authenticator = null)
    {
        var auth = options.Auth;
        var addresses = new List<string> { options.Mqtt.Address };
        if (options.Mqtt.Tls.Enabled)
        {
            addresses.Add(options.Mqtt.Tls.Address.Length > 0 ? options.Mqtt.Tls.Address : options.Mqtt.Address);
        }

        if (options.Mqtt.WebSocket.Enabled)
        {
            addresses.Add(options.Mqtt.WebSocket.Address.Length > 0 ? options.Mqtt.WebSocket.Address : options.Mqtt.Address);
        }

        var (allowAnonymous, reason) = auth.ResolveAllowAnonymous(addresses);
        var interval = TimeSpan.FromSeconds(auth.ReloadInterval);
        ReloadingFile<PasswordFile>? passwords = null;
        ReloadingFile<AclFile>? acl = null;
        try
        {
            passwords = Load("Auth:PasswordFile", auth.PasswordFile, PasswordFile.Parse, interval, log);
            acl = Load("Auth:AclFile", auth.AclFile, AclFile.Parse, interval, log);
        }
        catch
        {
            passwords?.Dispose();
            throw;
        }

        log.Info("Security: anonymous clients {0} ({1}); password file: {2}; ACL file: {3}",
            allowAnonymous ? "allowed" : "refused", reason,
            passwords is null ? "none" : $"{auth.PasswordFile} ({passwords.Current.Users.Count} users)",
            acl is null ? "none (every topic open to every client)" : auth.AclFile);
        authenticator ??= new PasswordFileAuthenticator(passwords, allowAnonymous, auth.UseCertificateSubjectAsUsername);
        HttpAuthenticator? http = null;
        if (auth.Jwt.Enabled)
        {
            authenticator = new JwtAuthenticator(auth.Jwt, authenticator);
            log.Info("Security: passwords that are JSON Web Tokens are validated with {0}{1}{2}",
                auth.Jwt.JwksFile.Length > 0 ? $"the keys of {auth.Jwt.JwksFile}" : "the HMAC secret",
                auth.Jwt.Issuer.Length > 0 ? $", issuer {auth.Jwt.Issuer}" : "", auth.Jwt.Audience.Length > 0 ? $", audience {auth.Jwt.Audience}" : "");
        }

        if (auth.Http.Url.Length > 0)
        {
            // The HTTP service first; "ignore" (and, when not fail-closed, no answer) lets the password file decide.
            authenticator = http = new HttpAuthenticator(auth.Http, authenticator);
            log.Info("Security: HTTP authentication at {0} (timeout {1} s, allows cached {2} s, {3}), then the password file",
                auth.Http.Url, auth.Http.TimeoutSeconds, auth.Http.CacheSeconds,
                auth.Http.FailClosed ? "no answer refuses" : "no answer lets the password file decide");
        }

        HttpAuthorizer? httpAcl = null;
        if (auth.Http.AclUrl.Length > 0)
        {
            httpAcl = new HttpAuthorizer(auth.Http);
            log.Info("Security: PUBLISH and SUBSCRIBE are authorized by the HTTP service at {0} (timeout {1} s, answers cached {2} s, at most {3}, {4}), then the ACL file",
                auth.Http.AclUrl, auth.Http.TimeoutSeconds, auth.Http.AclCacheSeconds, auth.Http.AclCacheSize,
                auth.Http.FailClosed ? "no answer denies" : "no answer lets the ACL file decide");
        }

        return new BrokerSecurity(authenticator, passwords, acl, allowAnonymous, reason) { _http = http, HttpAcl = httpAcl };
    }

    private static ReloadingFile<T>? Load<T>(string key, string path, Func<string, string, T> parse, TimeSpan interval, ILoggingAdapter log)
        where T : class
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }

        try
        {
            return new ReloadingFile<T>(path, parse, interval, m => log.Info("Security: {0}", m), m => log.Warning("Security: {0}", m));
        }
        catch (Exception e) when (e is SecurityFileException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{key} = '{path}': {e.Message}");
        }
    }

    /// <summary>Checks both files for changes now instead of at the next timer tick.</summary>
    public void CheckFiles()
    {
        _passwords?.Check();
        _acl?.Check();
    }

    public void Dispose()
    {
        _passwords?.Dispose();
        _acl?.Dispose();
        _http?.Dispose();
        HttpAcl?.Dispose();
    }
}
