using System.Collections.Immutable;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Tests.Channel;

/// <summary>A PUBLISH from the server to a client: its expiry, topic aliases, the client's Maximum Packet Size, what is dropped.</summary>
public sealed class OutboundPublishSpecs
{
    private static QueuedMessage Queued(string topic = "a/b", int payload = 10, MqttQoS qos = MqttQoS.AtLeastOnce, long expiresAtUnixMs = 0,
        uint? expiry = null) =>
        new(new MqttApplicationMessage(topic, new byte[payload], qos, false,
                MqttMessageProperties.Empty with { MessageExpiryInterval = expiry }, "publisher", expiresAtUnixMs),
            qos, Retain: false, ImmutableArray<uint>.Empty);

    private static MqttPublishPacket Packet(string topic = "a/b", int payload = 10) =>
        OutboundPublish.Packet(Queued(topic, payload), packetId: 7, dup: false, v5: true, nowUnixMs: 0);

    [Fact]
    public void The_packet_should_carry_the_sessions_packet_id_dup_flag_and_the_message()
    {
        var queued = Queued(qos: MqttQoS.ExactlyOnce) with { Retain = true, SubscriptionIdentifiers = [3, 4] };
        var packet = OutboundPublish.Packet(queued, packetId: 9, dup: true, v5: true, nowUnixMs: 0);
        Assert.Equal("a/b", packet.Topic);
        Assert.Equal(10, packet.Payload.Length);
        Assert.Equal(MqttQoS.ExactlyOnce, packet.QoS);
        Assert.True(packet.Retain);
        Assert.True(packet.Dup);
        Assert.Equal((ushort)9, packet.PacketId);
        Assert.Equal(new uint[] { 3, 4 }, packet.SubscriptionIdentifiers.ToArray());
        Assert.Same(queued.Message.Properties, packet.Properties); // nothing to change: not copied
    }

    [Theory]
    [InlineData(60_000, 60)] // waited no time
    [InlineData(59_001, 60)] // rounded up
    [InlineData(59_000, 59)]
    [InlineData(1, 1)] // about to expire: at least 1 s
    [InlineData(-5, 1)]
    public void A_v5_client_should_be_sent_the_remaining_expiry_rounded_up(long leftMs, uint expected)
    {
        // [MQTT-3.3.2-6] the interval sent is the received one minus the time the message waited in the server.
        const long now = 1_000_000;
        var packet = OutboundPublish.Packet(Queued(expiresAtUnixMs: now + leftMs, expiry: 60), 1, false, v5: true, nowUnixMs: now);
        Assert.Equal(expected, packet.Properties.MessageExpiryInterval);
    }

    [Fact]
    public void A_3_1_1_client_should_get_the_properties_untouched_as_it_is_sent_none()
    {
        var queued = Queued(expiresAtUnixMs: 2_000, expiry: 60);
        var packet = OutboundPublish.Packet(queued, 1, false, v5: false, nowUnixMs: 1_000);
        Assert.Same(queued.Message.Properties, packet.Properties);
        Assert.Equal(MqttPacketEncoder.GetSize(packet with { Properties = MqttMessageProperties.Empty }, MqttProtocolVersion.V311),
            MqttPacketEncoder.GetSize(packet, MqttProtocolVersion.V311)); // the encoder writes no properties in 3.1.1
    }

    [Fact]
    public void A_new_topic_should_be_taught_with_its_alias_and_sent_by_alias_alone_afterwards()
    {
        var aliases = new TopicAliases(inboundMaximum: 0, outboundMaximum: 2);
        var first = Packet("a/b");
        Assert.Equal(OutboundVerdict.Send, OutboundPublish.Prepare(ref first, MqttProtocolVersion.V500, uint.MaxValue, aliases));
        Assert.Equal(("a/b", (ushort)1), (first.Topic, first.TopicAlias));

        var again = Packet("a/b");
        Assert.Equal(OutboundVerdict.Send, OutboundPublish.Prepare(ref again, MqttProtocolVersion.V500, uint.MaxValue, aliases));
        Assert.Equal(("", (ushort)1), (again.Topic, again.TopicAlias));

        var other = Packet("c");
        OutboundPublish.Prepare(ref other, MqttProtocolVersion.V500, uint.MaxValue, aliases);
        Assert.Equal(("c", (ushort)2), (other.Topic, other.TopicAlias));
    }

    [Fact]
    public void Once_every_alias_the_client_allows_is_taken_topics_should_go_plainly()
    {
        var aliases = new TopicAliases(inboundMaximum: 0, outboundMaximum: 1);
        var first = Packet("a");
        OutboundPublish.Prepare(ref first, MqttProtocolVersion.V500, uint.MaxValue, aliases);

        var plain = Packet("b");
        Assert.Equal(OutboundVerdict.Send, OutboundPublish.Prepare(ref plain, MqttProtocolVersion.V500, uint.MaxValue, aliases));
        Assert.Equal(("b", (ushort)0), (plain.Topic, plain.TopicAlias));

        var known = Packet("a");
        OutboundPublish.Prepare(ref known, MqttProtocolVersion.V500, uint.MaxValue, aliases);
        Assert.Equal(("", (ushort)1), (known.Topic, known.TopicAlias)); // the first one still serves
    }

    [Fact]
    public void A_client_that_takes_no_aliases_should_get_the_packet_unchanged()
    {
        var packet = Packet("a/b");
        var before = packet;
        Assert.Equal(OutboundVerdict.Send, OutboundPublish.Prepare(ref packet, MqttProtocolVersion.V500, uint.MaxValue, aliases: null));
        Assert.Same(before, packet);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500)]
    [InlineData(MqttProtocolVersion.V311)]
    public void A_message_above_the_clients_maximum_packet_size_should_be_dropped(MqttProtocolVersion version)
    {
        // [MQTT-3.1.2-25] discarded without sending, as if its sending had completed.
        var packet = Packet(payload: 100);
        var size = (uint)MqttPacketEncoder.GetSize(packet, version);
        Assert.Equal(OutboundVerdict.DropTooLarge, OutboundPublish.Prepare(ref packet, version, size - 1, aliases: null));

        var fits = Packet(payload: 100);
        Assert.Equal(OutboundVerdict.Send, OutboundPublish.Prepare(ref fits, version, size, aliases: null));
    }

    [Fact]
    public void A_dropped_message_should_not_teach_its_alias()
    {
        // The client never saw the packet, so it does not know the alias: the next message on the topic must teach it.
        var aliases = new TopicAliases(inboundMaximum: 0, outboundMaximum: 5);
        var large = Packet("a/b", payload: 1_000);
        Assert.Equal(OutboundVerdict.DropTooLarge, OutboundPublish.Prepare(ref large, MqttProtocolVersion.V500, 100, aliases));

        var small = Packet("a/b", payload: 1);
        Assert.Equal(OutboundVerdict.Send, OutboundPublish.Prepare(ref small, MqttProtocolVersion.V500, 100, aliases));
        Assert.Equal(("a/b", (ushort)1), (small.Topic, small.TopicAlias));
    }

    [Fact]
    public void A_packet_that_fits_only_without_a_new_alias_should_go_plainly_and_leave_the_alias_untaught()
    {
        var aliases = new TopicAliases(inboundMaximum: 0, outboundMaximum: 5);
        var plainSize = (uint)MqttPacketEncoder.GetSize(Packet("a/b"), MqttProtocolVersion.V500);
        var packet = Packet("a/b");
        Assert.Equal(OutboundVerdict.Send, OutboundPublish.Prepare(ref packet, MqttProtocolVersion.V500, plainSize, aliases));
        Assert.Equal(("a/b", (ushort)0), (packet.Topic, packet.TopicAlias));
        Assert.Equal((ushort)1, aliases.OutboundAlias("a/b", out var known)); // still the next free one
        Assert.False(known);
    }

    [Fact]
    public void A_topic_sent_by_its_known_alias_should_be_measured_in_that_shorter_form()
    {
        var aliases = new TopicAliases(inboundMaximum: 0, outboundMaximum: 5);
        var teach = Packet("a/very/long/topic/name");
        OutboundPublish.Prepare(ref teach, MqttProtocolVersion.V500, uint.MaxValue, aliases);

        var plainSize = (uint)MqttPacketEncoder.GetSize(Packet("a/very/long/topic/name"), MqttProtocolVersion.V500);
        var byAlias = Packet("a/very/long/topic/name");
        Assert.Equal(OutboundVerdict.Send, OutboundPublish.Prepare(ref byAlias, MqttProtocolVersion.V500, plainSize - 10, aliases));
        Assert.Equal("", byAlias.Topic);
    }

    [Theory]
    [InlineData(MqttQoS.AtMostOnce, false, true)]
    [InlineData(MqttQoS.AtMostOnce, true, false)]
    [InlineData(MqttQoS.AtLeastOnce, false, false)] // held by the session's window instead
    [InlineData(MqttQoS.ExactlyOnce, false, false)]
    public void Only_qos_0_should_be_dropped_for_a_consumer_that_does_not_keep_up(MqttQoS qos, bool writable, bool dropped)
    {
        Assert.Equal(dropped, OutboundPublish.DropsForSlowConsumer(qos, writable));
    }

    [Fact]
    public void A_message_not_sent_should_be_completed_at_the_session_as_delivered()
    {
        Assert.Equal((MqttPacketType.PubAck, MqttReasonCode.Success), OutboundPublish.CompletionOfUnsent(MqttQoS.AtLeastOnce));
        // A PUBREC with a failure code ends the QoS 2 exchange (MQTT-v5.0 4.3.3): no PUBREL follows.
        Assert.Equal((MqttPacketType.PubRec, MqttReasonCode.UnspecifiedError), OutboundPublish.CompletionOfUnsent(MqttQoS.ExactlyOnce));
    }

    [Fact]
    public void Preparing_a_packet_without_aliases_should_allocate_nothing()
    {
        // The outbound path runs for every message delivered: the rules add no allocation beyond the packet itself.
        var packet = Packet(payload: 100);
        OutboundPublish.Prepare(ref packet, MqttProtocolVersion.V500, 10_000, aliases: null); // JIT-compiled first
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            OutboundPublish.Prepare(ref packet, MqttProtocolVersion.V500, 10_000, aliases: null);
            OutboundPublish.Prepare(ref packet, MqttProtocolVersion.V311, uint.MaxValue, aliases: null);
            OutboundPublish.DropsForSlowConsumer(MqttQoS.AtMostOnce, writable: true);
            OutboundPublish.CompletionOfUnsent(MqttQoS.ExactlyOnce);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
