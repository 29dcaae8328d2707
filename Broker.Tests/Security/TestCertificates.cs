using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Broker.Tests.Security;

/// <summary>
/// A throwaway PKI made at run time with <see cref="CertificateRequest"/>: a CA, a server certificate for 127.0.0.1
/// and localhost, and client certificates, written as PEM (certificate + PKCS#8 key) and PFX files.
/// </summary>
public sealed class TestCertificates
{
    private TestCertificates(string directory, X509Certificate2 ca)
    {
        Directory = directory;
        Ca = ca;
    }

    public string Directory { get; }

    public X509Certificate2 Ca { get; }

    public string CaFile => Path.Combine(Directory, "ca.pem");

    public string ServerCertFile => Path.Combine(Directory, "server.pem");

    public string ServerKeyFile => Path.Combine(Directory, "server.key");

    public string ServerPfxFile => Path.Combine(Directory, "server.pfx");

    public const string PfxPassword = "pfx-pass";

    public static TestCertificates Create(string directory, string caName = "Broker Test CA")
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest($"CN={caName}", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var pki = new TestCertificates(directory, ca);
        File.WriteAllText(pki.CaFile, ca.ExportCertificatePem());

        var server = pki.Issue("CN=broker-test-server", serverAuth: true, out var serverKey);
        File.WriteAllText(pki.ServerCertFile, server.ExportCertificatePem());
        File.WriteAllText(pki.ServerKeyFile, serverKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllBytes(pki.ServerPfxFile, server.CopyWithPrivateKey(serverKey).Export(X509ContentType.Pkcs12, PfxPassword));
        return pki;
    }

    /// <summary>Whether <paramref name="certificate"/> chains to <paramref name="ca"/> alone (no system roots).</summary>
    public static bool ChainsTo(System.Security.Cryptography.X509Certificates.X509Certificate certificate, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var presented = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(presented);
    }

    /// <summary>Issues a client certificate; writes name.pem and name.key and returns it with its private key.</summary>
    public X509Certificate2 IssueClient(string commonName)
    {
        var certificate = Issue($"CN={commonName}, O=Broker Tests", serverAuth: false, out var key);
        File.WriteAllText(Path.Combine(Directory, commonName + ".pem"), certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(Directory, commonName + ".key"), key.ExportPkcs8PrivateKeyPem());
        using var withKey = certificate.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private X509Certificate2 Issue(string subject, bool serverAuth, out ECDsa key)
    {
        key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [serverAuth ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        if (serverAuth)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }

        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        return request.Create(Ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29), serial);
    }
}
