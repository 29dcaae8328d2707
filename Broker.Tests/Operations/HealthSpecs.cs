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

/// <summary>Readiness follows the database: false while PostgreSQL is stopped, true again once it is back.</summary>
[Collection(Durability.PostgresCollection.Name)]
public sealed class ReadinessStorageSpecs(Durability.PostgresServer postgres)
{
    [Fact]
    public async Task Ready_turns_false_while_storage_is_unreachable_and_true_when_it_is_back()
    {
        var connectionString = await postgres.CreateDatabaseAsync("ready_" + Guid.NewGuid().ToString("N")[..8]);
        await using var ops = await OperationsHarness.StartAsync(o => o with
        {
            Storage = new StorageOptions { Provider = "postgresql", ConnectionString = connectionString },
        });
        Assert.Equal(HttpStatusCode.OK, (await HealthSpecs.GetAsync(ops.Client, "/health/ready")).Status);

        await postgres.StopAsync();
        try
        {
            var body = await WaitForReadyAsync(ops.Client, HttpStatusCode.ServiceUnavailable);
            Assert.Equal("unreachable", body.GetProperty("storage").GetString());
            Assert.Equal("Up", body.GetProperty("member").GetString());
            Assert.Equal(HttpStatusCode.OK, (await ops.Client.GetAsync("/health/live")).StatusCode);
        }
        finally
        {
            await postgres.StartAsync();
        }

        // The journal's circuit breaker may hold failures for a while after the database is back: wait for it.
        await WaitForReadyAsync(ops.Client, HttpStatusCode.OK);
    }

    private static async Task<JsonElement> WaitForReadyAsync(HttpClient client, HttpStatusCode expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            var (status, body) = await HealthSpecs.GetAsync(client, "/health/ready");
            if (status == expected)
            {
                return body;
            }

            Assert.True(DateTime.UtcNow < deadline, $"/health/ready stayed {status}: {body}");
            await Task.Delay(200);
        }
    }
}
