using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Broker.Configuration;
using DotNetty.Common.Utilities;
using DotNetty.Handlers.Tls;
using DotNetty.Transport.Channels;

namespace Broker.Security;

/// <summary>
/// The TLS listener's certificates, loaded once at start-up from Mqtt:Tls: the server certificate (PEM certificate
/// and key, or a PFX with its password), and the CA that client certificates must chain to. Makes one DotNetty
/// <see cref="TlsHandler"/> per connection, TLS 1.2 and 1.3 only.
/// </summary>
public sealed class TlsServerSetup
{
    private readonly X509Certificate2 _certificate;
    private readonly X509Certificate2Collection _clientCas;
    private readonly bool _requireClientCertificate;

    private TlsServerSetup(X509Certificate2 certificate, X509Certificate2Collection clientCas, bool requireClientCertificate)
    {
        _certificate = certificate;
        _clientCas = clientCas;
        _requireClientCertificate = requireClientCertificate;
    }

    public string Subject => _certificate.Subject;

    /// <summary>The server certificate (also served by the wss:// listener).</summary>
    public X509Certificate2 Certificate => _certificate;

    /// <summary>Whether clients are asked for a certificate (Mqtt:Tls:ClientCaFile set).</summary>
    public bool AsksForClientCertificate => _clientCas.Count > 0;

    public bool RequiresClientCertificate => _requireClientCertificate;

    /// <summary>The same check as the TLS listener's handshake, for the wss:// listener (Kestrel).</summary>
    public bool AcceptsClientCertificate(X509Certificate2? certificate, SslPolicyErrors errors) =>
        ValidateClientCertificate(this, certificate, null, errors);

    /// <summary>The verified client certificate of a wss:// connection (Kestrel did the handshake, not a TlsHandler).</summary>
    public static readonly AttributeKey<X509Certificate2> ClientCertificateKey = AttributeKey<X509Certificate2>.ValueOf("broker-client-certificate");

    /// <summary>Loads the files; an error names the key (Mqtt:Tls:Certificate, Mqtt:Tls:Key, Mqtt:Tls:ClientCaFile).</summary>
    public static TlsServerSetup Load(TlsOptions tls)
    {
        var certificate = LoadServerCertificate(tls);
        var cas = new X509Certificate2Collection();
        if (!string.IsNullOrWhiteSpace(tls.ClientCaFile))
        {
            try
            {
                cas.ImportFromPemFile(tls.ClientCaFile);
            }
            catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException)
            {
                throw new InvalidOperationException($"Mqtt:Tls:ClientCaFile = '{tls.ClientCaFile}': {e.Message}");
            }

            if (cas.Count == 0)
            {
                throw new InvalidOperationException($"Mqtt:Tls:ClientCaFile = '{tls.ClientCaFile}': no PEM certificate in the file");
            }
        }

        return new TlsServerSetup(certificate, cas, tls.RequireClientCertificate);
    }

    private static X509Certificate2 LoadServerCertificate(TlsOptions tls)
    {
        var path = tls.Certificate;
        X509Certificate2 loaded;
        try
        {
            var isPem = File.ReadAllText(path).Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal);
            if (!isPem)
            {
                loaded = X509CertificateLoader.LoadPkcs12FromFile(path, tls.Password.Length > 0 ? tls.Password : null);
            }
            else
            {
                var keyPath = string.IsNullOrWhiteSpace(tls.Key) ? path : tls.Key;
                using var pem = tls.Password.Length > 0
                    ? X509Certificate2.CreateFromEncryptedPemFile(path, tls.Password, keyPath)
                    : X509Certificate2.CreateFromPemFile(path, keyPath);
                // SslStream wants a key it can use for the handshake on every platform: go through PKCS#12 once.
                loaded = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            }
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or ArgumentException)
        {
            throw new InvalidOperationException(
                $"Mqtt:Tls:Certificate = '{path}'{(tls.Key.Length > 0 ? $" with Mqtt:Tls:Key = '{tls.Key}'" : "")}: {e.Message}");
        }

        if (!loaded.HasPrivateKey)
        {
            throw new InvalidOperationException($"Mqtt:Tls:Certificate = '{path}': no private key (set Mqtt:Tls:Key for a PEM certificate)");
        }

        return loaded;
    }

    /// <summary>The connection's SslStream, from which the connection actor reads the client certificate after the handshake.</summary>
    public static readonly AttributeKey<SslStream> SslStreamKey = AttributeKey<SslStream>.ValueOf("broker-ssl-stream");

    /// <summary>A handler for one new connection (TlsHandler keeps per-connection state).</summary>
    public TlsHandler CreateHandler(IChannel channel)
    {
        var askForCertificate = _clientCas.Count > 0;
        var settings = new ServerTlsSettings(_certificate, askForCertificate, false, SslProtocols.Tls12 | SslProtocols.Tls13);
        return new TlsHandler(stream =>
        {
            var ssl = new SslStream(stream, leaveInnerStreamOpen: true, ValidateClientCertificate);
            channel.GetAttribute(SslStreamKey).Set(ssl);
            return ssl;
        }, settings);
    }

    /// <summary>The Common Name of the verified client certificate of a TLS connection; null without one.</summary>
    public static string? ClientCertificateName(IChannel channel)
    {
        // HasAttribute first: GetAttribute creates the attribute (and the channel's attribute table) even to read it,
        // about 180 bytes kept for the life of every plain connection.
        if (channel.HasAttribute(ClientCertificateKey) && channel.GetAttribute(ClientCertificateKey).Get() is { } verified)
        {
            var cn = verified.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
            return string.IsNullOrEmpty(cn) ? null : cn;
        }

        if (!channel.HasAttribute(SslStreamKey) ||
            channel.GetAttribute(SslStreamKey).Get() is not { IsAuthenticated: true, RemoteCertificate: { } certificate })
        {
            return null;
        }

        using var parsed = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var name = parsed.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        return string.IsNullOrEmpty(name) ? null : name;
    }

    /// <summary>
    /// A client certificate must chain to Mqtt:Tls:ClientCaFile (the system's roots are not trusted for clients);
    /// none at all is fine unless Mqtt:Tls:RequireClientCertificate.
    /// </summary>
    private bool ValidateClientCertificate(object sender, X509Certificate? certificate, X509Chain? _, SslPolicyErrors errors)
    {
        if (certificate is null)
        {
            return !_requireClientCertificate;
        }

        if (_clientCas.Count == 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_clientCas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // no CRL/OCSP infrastructure assumed
        using var presented = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(presented);
    }
}
