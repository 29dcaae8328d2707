using Broker.Node.Hosting;
using Microsoft.Extensions.Configuration;

namespace Broker.Tests.Security;

/// <summary>Auth and Mqtt:Tls settings bind from the usual sources, and each mistake stops start-up naming its key.</summary>
public sealed class SecurityConfigurationSpecs
{
    private static (Broker.Configuration.BrokerOptions? Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] values) =>
        BrokerConfiguration.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build());

    [Fact]
    public void Auth_and_TLS_settings_bind_from_environment_style_keys()
    {
        using var files = new SecurityTestFiles();
        var passwords = files.WritePasswords(("a", "b"));
        var (options, errors) = Load(("AUTH:ALLOWANONYMOUS", "false"), ("AUTH:PASSWORDFILE", passwords), ("AUTH:RELOADINTERVAL", "2"),
            ("MQTT:MAXPUBLISHRATE", "100"), ("MQTT:MAXTOPICLEVELS", "16"), ("MQTT:MAXSUBSCRIPTIONSPERCLIENT", "50"),
            ("MQTT:TLS:PORT", "8883"), ("MQTT:TLS:CERTIFICATE", passwords));
        Assert.Empty(errors);
        Assert.False(options!.Auth.AllowAnonymous);
        Assert.Equal(passwords, options.Auth.PasswordFile);
        Assert.Equal(100, options.Mqtt.MaxPublishRate);
        Assert.Equal(16, options.Mqtt.MaxTopicLevels);
        Assert.Equal(50, options.Mqtt.MaxSubscriptionsPerClient);
        Assert.True(options.Mqtt.Tls.Enabled);
        Assert.Null(Load().Options!.Auth.AllowAnonymous);
        var (acl, aclErrors) = Load(("AUTH:HTTP:ACLURL", "http://127.0.0.1:8080/acl"), ("AUTH:HTTP:ACLCACHESECONDS", "0"), ("AUTH:HTTP:ACLCACHESIZE", "5000"));
        Assert.Empty(aclErrors);
        Assert.Equal(("http://127.0.0.1:8080/acl", 0, 5000), (acl!.Auth.Http.AclUrl, acl.Auth.Http.AclCacheSeconds, acl.Auth.Http.AclCacheSize));
    }

    [Theory]
    [InlineData("Auth:PasswordFile", "/nonexistent/passwords", "Auth:PasswordFile = '/nonexistent/passwords': file not found")]
    [InlineData("Auth:AclFile", "/nonexistent/acl", "Auth:AclFile = '/nonexistent/acl': file not found")]
    [InlineData("Auth:AllowAnonymous", "maybe", "Auth:AllowAnonymous = 'maybe'")]
    [InlineData("Auth:ReloadInterval", "0", "Auth:ReloadInterval = 0 is out of range")]
    [InlineData("Auth:Passwordfiel", "x", "Auth:Passwordfiel = 'x' is not a known setting")]
    [InlineData("Mqtt:MaxPublishRate", "-1", "Mqtt:MaxPublishRate = -1 is out of range")]
    [InlineData("Mqtt:Tls:RequireClientCertificate", "true", "Mqtt:Tls:Certificate = '' must name a PEM or PFX file")]
    [InlineData("Mqtt:Tls:Certificate", "/nonexistent/server.pem", "Mqtt:Tls:Certificate = '/nonexistent/server.pem': file not found")]
    [InlineData("Auth:Http:Url", "auth.local/check", "Auth:Http:Url = 'auth.local/check' is not an http:// or https:// address")]
    [InlineData("Auth:Http:AclUrl", "ftp://acl.local/check", "Auth:Http:AclUrl = 'ftp://acl.local/check' is not an http:// or https:// address")]
    [InlineData("Auth:Http:AclCacheSeconds", "-1", "Auth:Http:AclCacheSeconds = -1 is out of range")]
    [InlineData("Auth:Http:AclCacheSize", "10", "Auth:Http:AclCacheSize = 10 is out of range")]
    [InlineData("Auth:Http:AclCacheSize", "many", "Auth:Http:AclCacheSize = 'many'")]
    [InlineData("Auth:Jwt:Secret", "short", "Auth:Jwt:Secret is 5 characters long: at least 32 are needed")]
    [InlineData("Auth:Jwt:JwksFile", "/nonexistent/jwks.json", "Auth:Jwt:JwksFile = '/nonexistent/jwks.json': file not found")]
    public void A_bad_security_setting_names_its_key(string key, string value, string expected)
    {
        var (options, errors) = Load((key, value));
        Assert.Null(options);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Requiring_client_certificates_needs_a_client_CA()
    {
        using var files = new SecurityTestFiles();
        var some = files.WritePasswords(("a", "b"));
        var (_, errors) = Load(("Mqtt:Tls:Certificate", some), ("Mqtt:Tls:RequireClientCertificate", "true"));
        Assert.Contains(errors, e => e.StartsWith("Mqtt:Tls:ClientCaFile = ''", StringComparison.Ordinal));
    }
}
