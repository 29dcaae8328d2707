namespace Broker.Configuration;

/// <summary>
/// Authentication and authorization ("Auth" section). See README.md "Security".
/// </summary>
public sealed record AuthOptions
{
    /// <summary>
    /// Whether clients without credentials may connect. Unset (null) means: allowed only while every listener address
    /// is a loopback address (a node reachable from elsewhere must not be open by default); the start-up log says which.
    /// </summary>
    public bool? AllowAnonymous { get; init; }

    /// <summary>File of <c>user:hash</c> lines (PBKDF2, see <c>Broker.Node passwd</c>); empty means no password file.</summary>
    public string PasswordFile { get; init; } = "";

    /// <summary>Mosquitto-style ACL file; empty means every client may publish and subscribe to every topic.</summary>
    public string AclFile { get; init; } = "";

    /// <summary>Seconds between checks of the password and ACL files for changes (a changed file is reloaded).</summary>
    public int ReloadInterval { get; init; } = 5;

    /// <summary>On the TLS listener, a client certificate's subject Common Name (CN) is the client's username.</summary>
    public bool UseCertificateSubjectAsUsername { get; init; }

    /// <summary>Authentication by an HTTP service, asked before the password file (<see cref="Security.HttpAuthenticator"/>).</summary>
    public HttpAuthOptions Http { get; init; } = new();

    /// <summary>Passwords that are JSON Web Tokens, validated with a key from configuration (<see cref="Security.JwtAuthenticator"/>).</summary>
    public JwtAuthOptions Jwt { get; init; } = new();

    /// <summary>Resolves <see cref="AllowAnonymous"/> against the listener addresses; the reason is for the log.</summary>
    public (bool Allowed, string Reason) ResolveAllowAnonymous(IEnumerable<string> listenerAddresses)
    {
        if (AllowAnonymous is { } explicitly)
        {
            return (explicitly, $"Auth:AllowAnonymous = {explicitly.ToString().ToLowerInvariant()} in the configuration");
        }

        var addresses = listenerAddresses.ToList();
        var nonLoopback = addresses.Where(a => !System.Net.IPAddress.TryParse(a, out var ip) || !System.Net.IPAddress.IsLoopback(ip)).ToList();
        return nonLoopback.Count == 0
            ? (true, $"Auth:AllowAnonymous not set and every listener is on loopback ({string.Join(", ", addresses.Distinct())})")
            : (false, $"Auth:AllowAnonymous not set and a listener is reachable from other hosts ({string.Join(", ", nonLoopback.Distinct())})");
    }
}

/// <summary>The "Auth:Http" section: an HTTP service that decides CONNECTs; off while <see cref="Url"/> is empty.</summary>
public sealed record HttpAuthOptions
{
    /// <summary>The URL every CONNECT is POSTed to; empty: no HTTP authentication.</summary>
    public string Url { get; init; } = "";

    /// <summary>Seconds to wait for the answer.</summary>
    public int TimeoutSeconds { get; init; } = 5;

    /// <summary>Seconds an "allow" is remembered; 0: ask every time.</summary>
    public int CacheSeconds { get; init; } = 60;

    /// <summary>No usable answer refuses the client (true) or lets the password file (for topics: the ACL file) decide (false).</summary>
    public bool FailClosed { get; init; } = true;

    /// <summary>The URL PUBLISH and SUBSCRIBE are POSTed to (<see cref="Security.HttpAuthorizer"/>); empty: no HTTP authorization.</summary>
    public string AclUrl { get; init; } = "";

    /// <summary>Seconds an ACL answer (allow, deny or ignore) is remembered; 0: ask for every PUBLISH and SUBSCRIBE.</summary>
    public int AclCacheSeconds { get; init; } = 60;

    /// <summary>Most ACL answers remembered by a node.</summary>
    public int AclCacheSize { get; init; } = 100_000;
}

/// <summary>The "Auth:Jwt" section: on when <see cref="Secret"/> or <see cref="JwksFile"/> is set.</summary>
public sealed record JwtAuthOptions
{
    /// <summary>HMAC (HS256/384/512) key, at least 32 characters.</summary>
    public string Secret { get; init; } = "";

    /// <summary>A JSON Web Key Set file (public keys: RS256, ES256, ...), as an identity provider publishes it.</summary>
    public string JwksFile { get; init; } = "";

    /// <summary>Required "iss" claim; empty: not checked.</summary>
    public string Issuer { get; init; } = "";

    /// <summary>Required "aud" claim; empty: not checked.</summary>
    public string Audience { get; init; } = "";

    public bool Enabled => Secret.Length > 0 || JwksFile.Length > 0;
}

/// <summary>The TLS listener ("Mqtt:Tls" section); on when <see cref="Certificate"/> is set.</summary>
public sealed record TlsOptions
{
    /// <summary>TCP port of the MQTT-over-TLS listener (8883 is MQTT's registered TLS port); 0 picks a free one.</summary>
    public int Port { get; init; } = 8883;

    public bool Enabled => !string.IsNullOrWhiteSpace(Certificate);

    /// <summary>Listen address; empty means the same as Mqtt:Address.</summary>
    public string Address { get; init; } = "";

    /// <summary>Server certificate: a PEM file (with <see cref="Key"/>) or a PFX/PKCS#12 file (with <see cref="Password"/>).</summary>
    public string Certificate { get; init; } = "";

    /// <summary>PEM private key of the server certificate; empty when the certificate is a PFX or holds its key.</summary>
    public string Key { get; init; } = "";

    /// <summary>Password of the PFX file or of an encrypted PEM key.</summary>
    public string Password { get; init; } = "";

    /// <summary>Clients must present a certificate issued by <see cref="ClientCaFile"/>; the handshake fails otherwise.</summary>
    public bool RequireClientCertificate { get; init; }

    /// <summary>PEM file of the CA certificate(s) that issue client certificates; empty means none are asked for.</summary>
    public string ClientCaFile { get; init; } = "";
}
