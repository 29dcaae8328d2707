using System.Net;
using System.Text.Json;
using Broker.Configuration;
using Broker.Node.Operations;
using Broker.Tests.EndToEnd;

namespace Broker.Tests.Operations;

/// <summary>/health/live and /health/ready over real HTTP, before, while and after the broker runs.</summary>
public sealed class HealthSpecs
{
    [Fact]
    public async Task Live_at_once_ready_only_once_the_node_is_an_Up_member_with_storage()
    {
        // The host starts the HTTP endpoint before the broker: live, not ready.
        await using var http = await OperationsHttpServer.StartAsync(new BrokerOptions { Metrics = new MetricsOptions { Port = 0 } });
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http.EndPoint.Port}") };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);
        var (status, body) = await GetAsync(client, "/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.False(body.GetProperty("ready").GetBoolean());

        await using var broker = await BrokerHarness.StartAsync();
        http.Attach(broker.Server);
        (status, body) = await GetAsync(client, "/health/ready");
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.True(body.GetProperty("ready").GetBoolean());
        Assert.Equal("Up", body.GetProperty("member").GetString());
        Assert.Equal("reachable", body.GetProperty("storage").GetString());

        // Stopping: not ready from the first moment, still live.
        http.Detach();
        (status, _) = await GetAsync(client, "/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);
    }

    internal static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }
}
