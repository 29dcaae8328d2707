using System.Buffers;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Xunit;

namespace Broker.Tests.Protocol;

/// <summary>
/// A connection's decoder reuses the Topic Name of its previous PUBLISH when the next one spells the same topic, so a
/// client publishing to one topic again and again costs no new string per packet. Reuse must never change what is
/// decoded: another topic (however similar), a non-ASCII one, or one that breaks a rule is decoded and checked afresh.
/// </summary>
public sealed class TopicNameReuseSpecs
{
    private static MqttPublishPacket Decode(MqttPacketDecoder decoder, string topic, MqttProtocolVersion version = MqttProtocolVersion.V311)
    {
        var bytes = MqttPacketEncoder.Encode(new MqttPublishPacket { Topic = topic, Payload = new byte[] { 1, 2, 3 } }, version);
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.True(decoder.TryDecode(ref buffer, out var packet));
        return Assert.IsType<MqttPublishPacket>(packet);
    }

    [Fact]
    public void The_same_topic_again_is_the_same_string_instance()
    {
        var decoder = CodecTestKit.NewDecoder(MqttProtocolVersion.V311);
        var first = Decode(decoder, "sensors/1/temperature");
        var second = Decode(decoder, "sensors/1/temperature");

        Assert.Equal("sensors/1/temperature", second.Topic);
        Assert.Same(first.Topic, second.Topic);
    }

    [Theory]
    [InlineData("sensors/1/temperature", "sensors/2/temperature")] // same length, one byte differs
    [InlineData("sensors/1/temperature", "sensors/1/temperatur")] // a prefix
    [InlineData("sensors/1", "sensors/1/x")]
    [InlineData("a", "A")]
    public void Another_topic_is_decoded_afresh(string before, string after)
    {
        var decoder = CodecTestKit.NewDecoder(MqttProtocolVersion.V311);
        Decode(decoder, before);

        Assert.Equal(after, Decode(decoder, after).Topic);
        Assert.Equal(before, Decode(decoder, before).Topic);
    }

    [Fact]
    public void A_non_ASCII_topic_is_decoded_every_time_and_stays_right()
    {
        var decoder = CodecTestKit.NewDecoder(MqttProtocolVersion.V500);
        var first = Decode(decoder, "maison/température", MqttProtocolVersion.V500);
        var second = Decode(decoder, "maison/température", MqttProtocolVersion.V500);

        Assert.Equal("maison/température", first.Topic);
        Assert.Equal("maison/température", second.Topic);
        Assert.Equal("a/b", Decode(decoder, "a/b", MqttProtocolVersion.V500).Topic);
    }

    [Fact]
    public void A_wildcard_after_a_reused_topic_is_still_refused_MQTT_3_3_2_2()
    {
        var decoder = CodecTestKit.NewDecoder(MqttProtocolVersion.V311);
        Decode(decoder, "a/b");
        Decode(decoder, "a/b");

        var error = Assert.Throws<MqttProtocolException>(() => Decode(decoder, "a/+"));
        Assert.Contains("MQTT-3.3.2-2", error.Message);
    }

    [Fact]
    public void A_U0000_in_a_topic_of_the_same_length_as_the_last_is_still_malformed_MQTT_1_5_4_2()
    {
        var decoder = CodecTestKit.NewDecoder(MqttProtocolVersion.V311);
        Decode(decoder, "a/b");

        var frame = MqttPacketEncoder.Encode(new MqttPublishPacket { Topic = "a/c", Payload = new byte[] { 1 } }, MqttProtocolVersion.V311);
        frame[Array.IndexOf(frame, (byte)'c')] = 0; // "a/\0": three bytes, like "a/b"
        var buffer = new ReadOnlySequence<byte>(frame);
        var error = Assert.Throws<MqttProtocolException>(() => decoder.TryDecode(ref buffer, out _));
        Assert.Contains("U+0000", error.Message);
    }
}
