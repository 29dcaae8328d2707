using System.Text;
using Broker.Operations;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Broker.Tests.Persistence;
using MQTTnet;
using MQTTnet.Formatter;
using Akka.Actor;

namespace Broker.Tests.Sessions;

/// <summary>
/// On one node the three actors of a clean client (its connection, its live session beside it, the client id's guard)
/// do not watch each other: each tells the others as it stops. However the client ends, normally, by a dropped socket,
/// by a takeover, or before its CONNACK, its will goes out exactly when it must and nothing of it stays in memory.
/// </summary>
public sealed class CleanClientEndSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    private static Func<MqttConnectPacket, MqttConnectPacket> WithWill(string topic) => c => c with
    {
        KeepAlive = 60,
        Will = new MqttWill { Topic = topic, Payload = Encoding.UTF8.GetBytes("gone"), QoS = Broker.Protocol.MqttQoS.AtLeastOnce },
    };

    [Fact]
    public async Task Clean_clients_that_disconnect_drop_or_are_taken_over_leave_no_session_behind_and_wills_go_out_once()
    {
        var run = E2E.Id("ends", MqttProtocolVersion.V500);
        var watcher = await _broker.ConnectAsync(MqttProtocolVersion.V500, run + "-watcher");
        var wills = new MessageCollector(watcher);
        await watcher.SubscribeAsync(run + "/will/#", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce, CancellationToken.None);

        const int perMode = 6;
        var ids = new List<string>();
        for (var i = 0; i < perMode; i++)
        {
            // A normal DISCONNECT: no will [MQTT-3.1.2-10].
            var normalId = $"{run}-normal-{i}";
            var (normal, _) = await RawMqttClient.ConnectAsync(_broker.Port, MqttProtocolVersion.V500, normalId, WithWill($"{run}/will/{normalId}"));
            await normal.SendAsync(new MqttDisconnectPacket());
            await normal.ExpectClosedAsync(TimeSpan.FromSeconds(10));
            await normal.DisposeAsync();

            // The socket drops: the will goes out [MQTT-3.1.2-8].
            var droppedId = $"{run}-dropped-{i}";
            var (dropped, _) = await RawMqttClient.ConnectAsync(_broker.Port, MqttProtocolVersion.V500, droppedId, WithWill($"{run}/will/{droppedId}"));
            dropped.Abort();

            // Taken over by a clean connection, which then disconnects normally: the first session ends, its will goes
            // out (MQTT-v5.0 3.1.2.5); the second's does not.
            var takenId = $"{run}-taken-{i}";
            var (first, _) = await RawMqttClient.ConnectAsync(_broker.Port, MqttProtocolVersion.V500, takenId, WithWill($"{run}/will/{takenId}"));
            var (second, _) = await RawMqttClient.ConnectAsync(_broker.Port, MqttProtocolVersion.V500, takenId, WithWill($"{run}/will/{takenId}-second"));
            var closedFirst = await first.ExpectClosedAsync(TimeSpan.FromSeconds(10));
            Assert.Contains(closedFirst, p => p is MqttDisconnectPacket { ReasonCode: Broker.Protocol.MqttReasonCode.SessionTakenOver });
            await second.SendAsync(new MqttDisconnectPacket());
            await second.ExpectClosedAsync(TimeSpan.FromSeconds(10));
            await first.DisposeAsync();
            await second.DisposeAsync();
            ids.AddRange([normalId, droppedId, takenId]);
        }

        var got = await wills.WaitForAsync(2 * perMode, TimeSpan.FromSeconds(20));
        await wills.AssertNoMoreAsync(2 * perMode, TimeSpan.FromSeconds(1));
        var topics = got.Select(m => m.Topic).Order(StringComparer.Ordinal).ToList();
        var expected = Enumerable.Range(0, perMode).SelectMany(i => new[] { $"{run}/will/{run}-dropped-{i}", $"{run}/will/{run}-taken-{i}" })
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, topics);

        await AssertNothingLeftAsync(ids);
    }

    [Fact]
    public async Task A_connection_that_closes_before_its_CONNACK_leaves_no_session_behind()
    {
        var run = E2E.Id("early", MqttProtocolVersion.V500);
        var ids = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            // CONNECT and close at once: the socket ends while the session is being set up (or before it starts).
            var id = $"{run}-{i}";
            var client = await RawMqttClient.OpenAsync(_broker.Port, MqttProtocolVersion.V500);
            await client.SendAsync(new MqttConnectPacket { ProtocolVersion = client.Version, ClientId = id, CleanStart = true });
            if (i % 2 == 1)
            {
                await Task.Delay(i % 4 == 1 ? 0 : 2);
            }

            client.Abort();
            await client.DisposeAsync();
            ids.Add(id);
        }

        await AssertNothingLeftAsync(ids);

        // The client ids are free and work as before.
        var again = await _broker.ConnectAsync(MqttProtocolVersion.V500, ids[0]);
        Assert.True(again.IsConnected);
        var info = await SessionInfoAsync(ids[0]);
        Assert.True(info.Connected);
    }

    /// <summary>
    /// Waits until none of <paramref name="clientIds"/> has a guard in the session region or a live session that
    /// believes its connection is still there (the node's session host answers for a live session it still has).
    /// </summary>
    private async Task AssertNothingLeftAsync(IReadOnlyList<string> clientIds)
    {
        await StoredSessions.WaitPassivatedAsync(_broker.Server, clientIds, TimeSpan.FromSeconds(20));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        foreach (var id in clientIds)
        {
            while (true)
            {
                var info = await SessionInfoAsync(id);
                if (!info.Connected && info.Subscriptions.Count == 0)
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < deadline, $"{id}: still a connected session after its client ended (node {info.Node})");
                await Task.Delay(100);
            }
        }

        // Asking created no entity either.
        await StoredSessions.WaitPassivatedAsync(_broker.Server, clientIds, TimeSpan.FromSeconds(20));
    }

    private Task<SessionInfo> SessionInfoAsync(string clientId) =>
        _broker.Server.Context.Nodes.SelfHost.Ask<SessionInfo>(new GetSessionInfo(clientId), TimeSpan.FromSeconds(10));
}
