using System.Globalization;
using System.Net.Http.Headers;
using Broker.Configuration;
using Broker.Node.Operations;
using Broker.Tests.EndToEnd;

namespace Broker.Tests.Operations;

/// <summary>
/// A broker node in-process (<see cref="BrokerHarness"/>) with its operations HTTP endpoint (Kestrel on a free port
/// of 127.0.0.1), and an <see cref="HttpClient"/> pointed at it. Dispose stops both.
/// </summary>
public sealed class OperationsHarness : IAsyncDisposable
{
    public const string Token = "test-token-0123456789abcdef";

    private OperationsHarness(BrokerHarness broker, OperationsHttpServer http)
    {
        Broker = broker;
        Http = http;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http.EndPoint.Port}"), Timeout = TimeSpan.FromSeconds(15) };
    }

    public BrokerHarness Broker { get; }

    public OperationsHttpServer Http { get; }

    public HttpClient Client { get; }

    public static async Task<OperationsHarness> StartAsync(Func<BrokerOptions, BrokerOptions>? configure = null)
    {
        var broker = await BrokerHarness.StartAsync(o =>
        {
            o = o with { Management = new ManagementOptions { Token = Token } };
            return configure?.Invoke(o) ?? o;
        });
        try
        {
            // Port 0: Kestrel takes a free port (the node's configuration treats 0 as "off" and never gets here).
            var http = await OperationsHttpServer.StartAsync(broker.Server.Options with { Metrics = new MetricsOptions { Port = 0 } });
            http.Attach(broker.Server);
            return new OperationsHarness(broker, http);
        }
        catch
        {
            await broker.DisposeAsync();
            throw;
        }
    }

    public HttpRequestMessage Authorized(HttpMethod method, string path, string token = Token)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    public async Task<Dictionary<string, double>> ScrapeAsync() => await ScrapeAsync(Client);

    /// <summary>GET /metrics, parsed into "name{labels}" → value (labels as written by the broker).</summary>
    public static async Task<Dictionary<string, double>> ScrapeAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/metrics");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
        return Parse(await response.Content.ReadAsStringAsync());
    }

    public static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#'))
            {
                continue;
            }

            var space = line.LastIndexOf(' ');
            var value = line[(space + 1)..] switch
            {
                "+Inf" => double.PositiveInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, CultureInfo.InvariantCulture),
            };
            Assert.True(samples.TryAdd(line[..space], value), $"duplicate sample {line}");
        }

        return samples;
    }

    /// <summary>Scrapes until <paramref name="condition"/> holds; fails with the last value after the timeout.</summary>
    public async Task<Dictionary<string, double>> WaitForMetricsAsync(Func<Dictionary<string, double>, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            var samples = await ScrapeAsync();
            if (condition(samples))
            {
                return samples;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Metrics never showed {what}");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Http.DisposeAsync();
        await Broker.DisposeAsync();
    }
}
