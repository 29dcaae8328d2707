using System.Net;
using System.Text.Json;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Operations;

/// <summary>The management API over real HTTP against a node with real MQTT clients.</summary>
public sealed class ManagementApiSpecs
{
    [Theory]
    [InlineData(null)]
    [InlineData("wrong-token-0123456789")]
    [InlineData(OperationsHarness.Token + "x")]
    public async Task A_missing_or_wrong_token_gets_401(string? token)
    {
        await using var ops = await OperationsHarness.StartAsync();
        foreach (var (method, path) in new[] { (HttpMethod.Get, "/api/clients"), (HttpMethod.Get, "/api/cluster/members"),
                     (HttpMethod.Post, "/api/clients/anyone/disconnect") })
        {
            using var request = token is null ? new HttpRequestMessage(method, path) : ops.Authorized(method, path, token);
            using var response = await ops.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        }

        // The right token is accepted whatever the case of the scheme name (RFC 9110 11.1).
        using var lower = new HttpRequestMessage(HttpMethod.Get, "/api/clients");
        lower.Headers.TryAddWithoutValidation("Authorization", "bearer " + OperationsHarness.Token);
        using var accepted = await ops.Client.SendAsync(lower);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);

        // Metrics and health need no token.
        using var metrics = await ops.Client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
    }

    [Fact]
    public async Task Without_a_Management_Token_there_is_no_API()
    {
        await using var ops = await OperationsHarness.StartAsync(o => o with { Management = new Configuration.ManagementOptions() });
        using var response = await ops.Client.SendAsync(ops.Authorized(HttpMethod.Get, "/api/clients", ""));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task List_show_and_disconnect_a_client()
    {
        await using var ops = await OperationsHarness.StartAsync();
        var client = ops.Broker.NewClient();
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        await client.ConnectAsync(ops.Broker.Options(MqttProtocolVersion.V500, "api-device")
            .WithCleanStart(false).WithSessionExpiryInterval(600).Build());
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("api/device/cmd", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter("api/all/#", MqttQualityOfServiceLevel.ExactlyOnce).Build());
        await ops.Broker.ConnectAsync(MqttProtocolVersion.V311, "api-other");

        using (var list = await GetJsonAsync(ops, "/api/clients"))
        {
            var clients = list.RootElement.GetProperty("clients").EnumerateArray().ToList();
            Assert.Equal(["api-device", "api-other"], clients.Select(c => c.GetProperty("clientId").GetString()));
            var device = clients[0];
            Assert.Equal("5.0", device.GetProperty("protocolVersion").GetString());
            Assert.StartsWith("127.0.0.1:", device.GetProperty("remoteAddress").GetString());
            Assert.Equal(600u, device.GetProperty("sessionExpiry").GetUInt32());
        }

        using (var show = await GetJsonAsync(ops, "/api/clients/api-device"))
        {
            Assert.True(show.RootElement.GetProperty("connected").GetBoolean());
            var session = show.RootElement.GetProperty("session");
            Assert.True(session.GetProperty("exists").GetBoolean());
            Assert.True(session.GetProperty("persistent").GetBoolean());
            var subscriptions = session.GetProperty("subscriptions").EnumerateArray()
                .ToDictionary(s => s.GetProperty("filter").GetString()!, s => s.GetProperty("qoS").GetInt32());
            Assert.Equal(new Dictionary<string, int> { ["api/device/cmd"] = 1, ["api/all/#"] = 2 }, subscriptions);
        }

        using (var kick = await ops.Client.SendAsync(ops.Authorized(HttpMethod.Post, "/api/clients/api-device/disconnect")))
        {
            Assert.Equal(HttpStatusCode.OK, kick.StatusCode);
        }

        // The client hears why: v5 DISCONNECT 0x98 Administrative action.
        var reason = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(MqttClientDisconnectReason.AdministrativeAction, reason.Reason);

        // Its persistent session stays, offline, with its subscriptions.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            using var after = await GetJsonAsync(ops, "/api/clients/api-device");
            if (!after.RootElement.GetProperty("connected").GetBoolean() &&
                !after.RootElement.GetProperty("session").GetProperty("connected").GetBoolean())
            {
                Assert.Equal(2, after.RootElement.GetProperty("session").GetProperty("subscriptions").GetArrayLength());
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "the kicked client still shows as connected");
            await Task.Delay(50);
        }

        var m = await ops.WaitForMetricsAsync(s => s["mqtt_disconnects_total{reason=\"administrative\"}"] == 1, "one administrative disconnect");
        Assert.Equal(1, m["mqtt_connections"]);

        // Unknown clients: 404 for show and for disconnect.
        using var unknown = await ops.Client.SendAsync(ops.Authorized(HttpMethod.Get, "/api/clients/nobody-here"));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var unknownKick = await ops.Client.SendAsync(ops.Authorized(HttpMethod.Post, "/api/clients/nobody-here/disconnect"));
        Assert.Equal(HttpStatusCode.NotFound, unknownKick.StatusCode);
    }

    [Fact]
    public async Task A_client_taken_over_on_the_same_node_is_listed_once_with_its_new_connection_and_leaves_when_it_goes()
    {
        await using var ops = await OperationsHarness.StartAsync();
        var first = ops.Broker.NewClient();
        var firstClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        first.DisconnectedAsync += _ =>
        {
            firstClosed.TrySetResult();
            return Task.CompletedTask;
        };
        await first.ConnectAsync(ops.Broker.Options(MqttProtocolVersion.V500, "api-twice").Build());
        var firstAddress = await RemoteAddressAsync(ops, "api-twice");

        var second = await ops.Broker.ConnectAsync(MqttProtocolVersion.V311, "api-twice");
        await firstClosed.Task.WaitAsync(TimeSpan.FromSeconds(10)); // the old connection was closed (0x8E)

        // The old connection's end removes nothing of the new one's entry.
        string? listed = null;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            using var list = await GetJsonAsync(ops, "/api/clients");
            var clients = list.RootElement.GetProperty("clients").EnumerateArray().ToList();
            Assert.Single(clients);
            if (clients[0].GetProperty("protocolVersion").GetString() == "3.1.1")
            {
                listed = clients[0].GetProperty("remoteAddress").GetString();
                break;
            }

            await Task.Delay(50);
        }

        Assert.NotNull(listed);
        Assert.NotEqual(firstAddress, listed);

        await second.DisconnectAsync();
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            using var gone = await ops.Client.SendAsync(ops.Authorized(HttpMethod.Get, "/api/clients"));
            using var doc = await JsonDocument.ParseAsync(await gone.Content.ReadAsStreamAsync());
            if (doc.RootElement.GetProperty("clients").GetArrayLength() == 0)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "the disconnected client is still listed");
            await Task.Delay(50);
        }
    }

    private static async Task<string> RemoteAddressAsync(OperationsHarness ops, string clientId)
    {
        using var list = await GetJsonAsync(ops, "/api/clients");
        return list.RootElement.GetProperty("clients").EnumerateArray()
            .Single(c => c.GetProperty("clientId").GetString() == clientId).GetProperty("remoteAddress").GetString()!;
    }

    internal static async Task<JsonDocument> GetJsonAsync(OperationsHarness ops, string path) =>
        await GetJsonAsync(ops.Client, ops.Authorized(HttpMethod.Get, path));

    internal static async Task<JsonDocument> GetJsonAsync(HttpClient client, HttpRequestMessage request)
    {
        using (request)
        {
            using var response = await client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{request.RequestUri}: {(int)response.StatusCode} {body}");
            return JsonDocument.Parse(body);
        }
    }
}
