using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using PuppeteerSharp;

namespace Broker.Tests.Browser;

/// <summary>
/// Debian's Chromium (/usr/bin/chromium, installed by run-tests.sh) started headless by PuppeteerSharp with a fresh
/// profile and no background traffic (a browser download or update check is not reachable here). Each page records
/// its console errors and uncaught exceptions, so specs can assert that a page ran cleanly.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    public const string Executable = "/usr/bin/chromium";

    private readonly IBrowser _browser;
    private readonly string _profile;

    private HeadlessChromium(IBrowser browser, string profile)
    {
        _browser = browser;
        _profile = profile;
    }

    /// <param name="trusted">
    /// Server certificates (self-signed or from a test CA) whose keys this browser accepts for TLS, by Chromium's
    /// <c>--ignore-certificate-errors-spki-list</c>: a certificate error is ignored only for a chain that holds one of
    /// these public keys (SHA-256 of the SubjectPublicKeyInfo). Any other certificate is still refused.
    /// </param>
    public static async Task<HeadlessChromium> LaunchAsync(params X509Certificate2[] trusted)
    {
        if (!File.Exists(Executable))
        {
            throw new InvalidOperationException($"{Executable} not found: run Broker.Tests/run-tests.sh (installs Debian's chromium)");
        }

        var profile = Path.Combine(Path.GetTempPath(), "broker-chromium-" + Guid.NewGuid().ToString("N"));
        var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Executable,
            Headless = true,
            UserDataDir = profile,
            Timeout = 30_000,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                .. trusted.Length == 0 ? Array.Empty<string>() : ["--ignore-certificate-errors-spki-list=" + string.Join(',', trusted.Select(SpkiHash))],
            ],
        });
        return new HeadlessChromium(browser, profile);
    }

    /// <summary>base64(SHA-256(SubjectPublicKeyInfo)): how Chromium names a public key in its SPKI lists.</summary>
    public static string SpkiHash(X509Certificate2 certificate) =>
        Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));

    /// <summary>A new page whose console errors and page errors are collected in <paramref name="errors"/>.</summary>
    public async Task<IPage> NewPageAsync(List<string> errors, int width = 1280, int height = 900)
    {
        var page = await _browser.NewPageAsync();
        await page.SetViewportAsync(new ViewPortOptions { Width = width, Height = height });
        page.Console += (_, e) =>
        {
            if (e.Message.Type == ConsoleType.Error)
            {
                lock (errors)
                {
                    errors.Add("console: " + e.Message.Text);
                }
            }
        };
        page.PageError += (_, e) =>
        {
            lock (errors)
            {
                errors.Add("page error: " + e.Message);
            }
        };
        return page;
    }

    /// <summary>Waits until <paramref name="expression"/> is truthy in the page (polling, bounded).</summary>
    public static async Task WaitForAsync(IPage page, string expression, TimeSpan? timeout = null)
    {
        await page.WaitForFunctionAsync("() => " + expression,
            new WaitForFunctionOptions { Timeout = (int)(timeout ?? TimeSpan.FromSeconds(15)).TotalMilliseconds, PollingInterval = 100 });
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.CloseAsync();
        await _browser.DisposeAsync();
        try
        {
            Directory.Delete(_profile, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
