using System.Text;
using Broker.Persistence;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Cluster;

/// <summary>
/// A session entity that fails stops instead of restarting with nothing in memory: a restart keeps the actor's
/// address, so its connection would never learn that the session forgot it, and the session would queue what it
/// should send. Here the failure is a journal answer that nothing asked for (the entity's journal link has nothing
/// waiting: it throws), sent to a connected persistent subscriber's entity; its connection must attach again to the
/// next incarnation without troubling the client, and the next message must reach the client on the same socket.
/// </summary>
public sealed class FailedSessionSpecs : IAsyncLifetime
{
    private const string Topic = "failed/session";
    private BrokerHarness _broker = null!;

    public async Task InitializeAsync() => _broker = await BrokerHarness.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task A_persistent_session_that_fails_is_recovered_and_its_connected_client_keeps_receiving()
    {
        var subscriberId = $"failed-sub-{Guid.NewGuid().ToString("N")[..6]}";
        var (subscriber, _) = await RawMqttClient.ConnectAsync(_broker.Port, ClientVersion.V500, subscriberId,
            c => c with { SessionExpiryInterval = 300 });
        await using var _s = subscriber;
        await subscriber.SubscribeAsync(1, Topic, MqttQoS.AtLeastOnce);
        var (publisher, _) = await RawMqttClient.ConnectAsync(_broker.Port, ClientVersion.V500, $"failed-pub-{Guid.NewGuid().ToString("N")[..6]}");
        await using var _p = publisher;

        Assert.True(await PublishAsync(publisher, 1, "before"));
        await ReceiveAsync(subscriber, "before");

        var entity = _broker.SessionEntity(subscriberId);
        // An answer nobody asked for: the entity throws, now if nothing is owed to it, or on the last answer it is owed.
        entity.Tell(JournalDone.Instance);

        // A publish that meets the session while it stops may be refused (0x97, not taken: the publisher sends it
        // again); once one is acknowledged, the subscriber must get it on its connection.
        var refused = 0;
        while (!await PublishAsync(publisher, (ushort)(2 + refused), "after"))
        {
            Assert.True(++refused < 5, "the publish after the failure was refused five times"); // each refusal took the hold (2.5 s)
        }

        await ReceiveAsync(subscriber, "after");
    }

    /// <summary>Publishes at QoS 1: true when acknowledged, false when refused with 0x97 (Quota exceeded).</summary>
    private static async Task<bool> PublishAsync(RawMqttClient publisher, ushort packetId, string payload)
    {
        await publisher.SendAsync(new MqttPublishPacket
        {
            Topic = Topic, QoS = MqttQoS.AtLeastOnce, PacketId = packetId, Payload = Encoding.UTF8.GetBytes(payload),
        });
        var ack = await publisher.ExpectAsync<MqttPubAckPacket>(TimeSpan.FromSeconds(15));
        Assert.Equal(packetId, ack.PacketId);
        Assert.True(ack.ReasonCode is MqttReasonCode.Success or MqttReasonCode.QuotaExceeded, $"PUBACK 0x{(int)ack.ReasonCode:X2}");
        return ack.ReasonCode == MqttReasonCode.Success;
    }

    /// <summary>The next PUBLISH on the subscriber's socket is <paramref name="payload"/> (acknowledged); a resend of an earlier one is skipped.</summary>
    private static async Task ReceiveAsync(RawMqttClient subscriber, string payload)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"\"{payload}\" did not arrive on the subscriber's connection within 15 s");
            var packet = await subscriber.ReceiveAsync(left);
            if (packet is not MqttPublishPacket publish)
            {
                Assert.True(packet is not null, $"the subscriber's connection closed or went silent before \"{payload}\"");
                continue;
            }

            await subscriber.SendAsync(new MqttPubAckPacket { PacketId = publish.PacketId });
            if (Encoding.UTF8.GetString(publish.Payload.ToArray()) == payload)
            {
                return;
            }
        }
    }
}
