using System.Net;

namespace Broker.Security;

/// <summary>
/// Decides whether a CONNECT may proceed. Implementations may be slow (a hash, an HTTP call, a database query): they
/// are called off the connection actor's thread and their result comes back to it as a message. The password file
/// is one implementation (<see cref="PasswordFileAuthenticator"/>); an HTTP or database authenticator implements the
/// same interface and is passed to <see cref="BrokerSecurity"/>.
/// </summary>
public interface IAuthenticator
{
    Task<AuthResult> AuthenticateAsync(AuthRequest request, CancellationToken cancellationToken);
}

/// <summary>What a client presented at CONNECT. <see cref="CertificateSubject"/> is the CN of a verified TLS client certificate.</summary>
public sealed record AuthRequest(
    string ClientId,
    string? Username,
    ReadOnlyMemory<byte>? Password,
    EndPoint? RemoteAddress,
    string? CertificateSubject);

public enum AuthOutcome
{
    /// <summary>The client may connect as <see cref="AuthResult.Username"/> (null: anonymous).</summary>
    Allowed,

    /// <summary>Credentials were given and are wrong (3.1.1 0x04, v5 0x86).</summary>
    BadCredentials,

    /// <summary>No credentials, and anonymous clients are not allowed (3.1.1 0x05, v5 0x87).</summary>
    NotAuthorized,
}

/// <summary>
/// The decision, and the username the client is known by for ACLs (from the certificate, or as given);
/// <see cref="Grants"/> are the topics its token's <c>acl</c> claim lets it use (null: the token carried none).
/// </summary>
public sealed record AuthResult(AuthOutcome Outcome, string? Username, TopicGrants? Grants = null)
{
    public static AuthResult Bad { get; } = new(AuthOutcome.BadCredentials, null);

    public static AuthResult Refused { get; } = new(AuthOutcome.NotAuthorized, null);
}
