using System.Security.Cryptography;
using System.Text;
using Broker.Configuration;
using Broker.Protocol;
using Broker.Tests.EndToEnd;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>
/// Auth:Jwt: a password that is a JSON Web Token is validated (signature, expiry) with an HMAC secret or a JWKS file;
/// a password that is not a token goes on to the password file.
/// </summary>
public sealed class JwtAuthenticationSpecs : IDisposable
{
    private const string Secret = "a-shared-secret-of-at-least-32-characters!";
    private readonly SecurityTestFiles _files = new();

    [Fact]
    public async Task An_HMAC_token_is_accepted_while_valid_and_refused_when_expired_or_signed_with_another_key()
    {
        var passwords = _files.WritePasswords(("bob", "s3cret"));
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Auth = o.Auth with { PasswordFile = passwords, Jwt = new JwtAuthOptions { Secret = Secret } },
        });
        var key = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Secret));
        var credentials = new SigningCredentials(key, SecurityAlgorithms.HmacSha256);

        Assert.Equal(0, await ConnectAsync(broker, "dev-1", Token(credentials, DateTime.UtcNow.AddMinutes(5))));
        Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword, await ConnectAsync(broker, "dev-1", Token(credentials, DateTime.UtcNow.AddMinutes(-5))));
        var other = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Secret.ToUpperInvariant())), SecurityAlgorithms.HmacSha256);
        Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword, await ConnectAsync(broker, "dev-1", Token(other, DateTime.UtcNow.AddMinutes(5))));

        // Not a token: the password file decides.
        Assert.Equal(0, await ConnectAsync(broker, "bob", "s3cret"));
        Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword, await ConnectAsync(broker, "bob", "wrong"));
    }

    [Fact]
    public async Task A_token_signed_with_a_key_of_the_JWKS_file_is_accepted()
    {
        using var rsa = RSA.Create(2048);
        var signingKey = new RsaSecurityKey(rsa) { KeyId = "k1" };
        var publicJwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(false)) { KeyId = "k1" });
        var jwks = Path.Combine(_files.Directory, "jwks.json");
        await File.WriteAllTextAsync(jwks, $$"""{"keys":[{"kty":"RSA","kid":"k1","use":"sig","n":"{{publicJwk.N}}","e":"{{publicJwk.E}}"}]}""");
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Auth = o.Auth with { Jwt = new JwtAuthOptions { JwksFile = jwks, Issuer = "https://id.example" } },
        });
        var credentials = new SigningCredentials(signingKey, SecurityAlgorithms.RsaSha256);

        Assert.Equal(0, await ConnectAsync(broker, "dev-2", Token(credentials, DateTime.UtcNow.AddMinutes(5), "https://id.example")));
        Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword,
            await ConnectAsync(broker, "dev-2", Token(credentials, DateTime.UtcNow.AddMinutes(5), "https://other.example")));
    }

    public void Dispose() => _files.Dispose();

    private static string Token(SigningCredentials credentials, DateTime expires, string? issuer = null) =>
        new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object> { ["sub"] = "dev" },
            Issuer = issuer,
            NotBefore = expires.AddMinutes(-10),
            IssuedAt = expires.AddMinutes(-10),
            Expires = expires,
            SigningCredentials = credentials,
        });

    private static async Task<byte> ConnectAsync(BrokerHarness broker, string user, string password)
    {
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "jwt-" + Guid.NewGuid().ToString("N")[..8],
            c => c with { Username = user, Password = Encoding.UTF8.GetBytes(password) });
        await client.DisposeAsync();
        return connAck.ReasonCode;
    }
}
