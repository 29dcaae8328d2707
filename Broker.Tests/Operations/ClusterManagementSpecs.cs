using System.Net;
using Broker.Configuration;
using Broker.Node.Operations;
using Broker.Operations;
using Broker.Tests.Cluster;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Operations;

/// <summary>
/// The management API of node 1 answers for the whole cluster (the shared three-node in-process cluster on
/// PostgreSQL): members, clients connected to other nodes, their sessions, and disconnecting them. The queries cross
/// nodes with their own serializer, never the JSON fallback.
/// </summary>
[Collection(ThreeNodeClusterCollection.Name)]
public sealed class ClusterManagementSpecs(ThreeNodeClusterFixture fixture)
{
    private const string Token = OperationsHarness.Token;
    private readonly ClusterHarness _cluster = fixture.Cluster;

    [Fact]
    public async Task Node_1_lists_members_and_clients_of_every_node_and_disconnects_a_client_of_node_3()
    {
        var node1 = _cluster.Node(1);
        await using var http = await OperationsHttpServer.StartAsync(node1.Options with
        {
            Metrics = new MetricsOptions { Port = 0 },
            Management = new ManagementOptions { Token = Token },
        });
        http.Attach(node1);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http.EndPoint.Port}"), Timeout = TimeSpan.FromSeconds(20) };
        HttpRequestMessage Get(string path) => Authorized(HttpMethod.Get, path);

        using (var members = await ManagementApiSpecs.GetJsonAsync(client, Get("/api/cluster/members")))
        {
            var list = members.RootElement.GetProperty("members").EnumerateArray().ToList();
            Assert.Equal(3, list.Count);
            Assert.All(list, m => Assert.Equal("Up", m.GetProperty("status").GetString()));
            Assert.All(list, m => Assert.True(m.GetProperty("reachable").GetBoolean()));
            Assert.Single(list, m => m.GetProperty("self").GetBoolean());
            Assert.Single(list, m => m.GetProperty("leader").GetBoolean());
            var ports = list.Select(m => new Uri(m.GetProperty("address").GetString()!.Replace("akka.tcp", "tcp")).Port).Order();
            Assert.Equal(_cluster.Running.Select(n => Akka.Cluster.Cluster.Get(n.System).SelfAddress.Port!.Value).Order(), ports);
        }

        var id = E2E.Id("ops-x", MqttProtocolVersion.V500);
        var far = _cluster.NewClient();
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        far.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        await far.ConnectAsync(_cluster.Options(3, MqttProtocolVersion.V500, id).WithCleanStart(true).WithSessionExpiryInterval(120).Build());
        await far.SubscribeAsync(id + "/cmd", MqttQualityOfServiceLevel.AtLeastOnce);
        await _cluster.ConnectAsync(2, id + "-near");

        var node3 = Akka.Cluster.Cluster.Get(_cluster.Node(3).System).SelfAddress.ToString();
        using (var clients = await ManagementApiSpecs.GetJsonAsync(client, Get("/api/clients")))
        {
            var list = clients.RootElement.GetProperty("clients").EnumerateArray().ToList();
            Assert.Equal(node3, Assert.Single(list, c => c.GetProperty("clientId").GetString() == id).GetProperty("node").GetString());
            Assert.Single(list, c => c.GetProperty("clientId").GetString() == id + "-near");
            Assert.Equal(0, clients.RootElement.GetProperty("unansweredNodes").GetArrayLength());
        }

        using (var show = await ManagementApiSpecs.GetJsonAsync(client, Get("/api/clients/" + id)))
        {
            Assert.Equal(node3, show.RootElement.GetProperty("connection").GetProperty("node").GetString());
            var session = show.RootElement.GetProperty("session");
            Assert.True(session.GetProperty("connected").GetBoolean());
            Assert.Equal(id + "/cmd", Assert.Single(session.GetProperty("subscriptions").EnumerateArray()).GetProperty("filter").GetString());
        }

        using (var kick = await client.SendAsync(Authorized(HttpMethod.Post, $"/api/clients/{id}/disconnect")))
        {
            Assert.Equal(HttpStatusCode.OK, kick.StatusCode);
        }

        Assert.Equal(MqttClientDisconnectReason.AdministrativeAction, (await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10))).Reason);

        // No management message crossed nodes through the JSON fallback serializer.
        Assert.DoesNotContain(fixture.Serialization.ByFallback.Keys, t => t.Namespace == typeof(ListClients).Namespace);
    }

    private static HttpRequestMessage Authorized(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
        return request;
    }
}
