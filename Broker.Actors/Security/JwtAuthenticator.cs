using System.Text;
using System.Text.Json;
using Broker.Configuration;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Security;

/// <summary>
/// A client whose password is a JSON Web Token (three base64url parts) is let in when the token validates against the
/// configured key (<c>Auth:Jwt:Secret</c> for HMAC, <c>Auth:Jwt:JwksFile</c> for public keys): signature, expiry
/// ("exp", "nbf", 30 s of clock skew) and, when configured, issuer and audience. Its username is the one it sent, or
/// the token's "sub" without one; the topics of its <c>acl</c> claim, if any, are its <see cref="TopicGrants"/> (a claim
/// that does not parse refuses the token). A token that does not validate is refused (0x04 / 0x86); a password that is not a
/// token goes on to the next authenticator (the password file). The keys are read at start-up.
/// </summary>
public sealed class JwtAuthenticator : IAuthenticator
{
    private readonly IAuthenticator _next;
    private readonly JsonWebTokenHandler _handler = new();
    private readonly TokenValidationParameters _parameters;

    public JwtAuthenticator(JwtAuthOptions options, IAuthenticator next)
    {
        _next = next;
        var keys = new List<SecurityKey>();
        if (options.Secret.Length > 0)
        {
            keys.Add(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(options.Secret)));
        }

        if (options.JwksFile.Length > 0)
        {
            keys.AddRange(new JsonWebKeySet(File.ReadAllText(options.JwksFile)).GetSigningKeys());
        }

        _parameters = new TokenValidationParameters
        {
            IssuerSigningKeys = keys,
            ValidateIssuer = options.Issuer.Length > 0,
            ValidIssuer = options.Issuer,
            ValidateAudience = options.Audience.Length > 0,
            ValidAudience = options.Audience,
            ValidateLifetime = true,
            ClockSkew = TimeSpan.FromSeconds(30),
        };
    }

    public async Task<AuthResult> AuthenticateAsync(AuthRequest request, CancellationToken cancellationToken)
    {
        var password = request.Password is { } p ? Encoding.UTF8.GetString(p.Span) : null;
        if (password is null || password.Count(c => c == '.') != 2 || !_handler.CanReadToken(password))
        {
            return await _next.AuthenticateAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var result = await _handler.ValidateTokenAsync(password, _parameters).ConfigureAwait(false);
        if (!result.IsValid)
        {
            return AuthResult.Bad;
        }

        var subject = result.Claims.TryGetValue("sub", out var sub) ? sub?.ToString() : null;
        var username = request.Username ?? subject;
        TopicGrants? grants;
        try
        {
            using var payload = JsonDocument.Parse(Base64UrlEncoder.Decode(((JsonWebToken)result.SecurityToken).EncodedPayload));
            grants = TopicGrants.FromClaim(payload.RootElement, request.ClientId, username);
        }
        catch (Exception e) when (e is FormatException or JsonException or ArgumentException)
        {
            return AuthResult.Bad; // a token whose topics cannot be read must not be let in with more than it grants
        }

        return new AuthResult(AuthOutcome.Allowed, username, grants);
    }
}
