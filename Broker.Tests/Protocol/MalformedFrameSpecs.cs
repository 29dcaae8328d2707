using System.Buffers;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Xunit;
using static Broker.Tests.Protocol.CodecTestKit;

namespace Broker.Tests.Protocol;

/// <summary>
/// Hex tables of bad frames, one row per spec rule, each with the exact reason code the decoder must report.
/// Rows are whole frames (fixed header included) decoded through <see cref="MqttPacketDecoder.TryDecode"/>.
/// </summary>
public sealed class MalformedFrameSpecs
{
    private const MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private const MqttProtocolVersion V500 = MqttProtocolVersion.V500;
    private const MqttReasonCode Malformed = MqttReasonCode.MalformedPacket;
    private const MqttReasonCode ProtocolError = MqttReasonCode.ProtocolError;
    private const MqttReasonCode Unsupported = MqttReasonCode.UnsupportedProtocolVersion;

    public static TheoryData<string, MqttProtocolVersion, string, MqttReasonCode> Frames() => new()
    {
        // Fixed header
        { "[MQTT-1.5.5-1] Remaining Length of 5 bytes", V311, "30 FF FF FF FF 01", Malformed },
        { "[MQTT-2.2.2-2] PUBACK with flags 0001", V311, "41 02 00 01", Malformed },
        { "[MQTT-2.2.2-1] PUBREL with flags 0000", V311, "60 02 00 01", Malformed },
        { "[MQTT-2.2.2-1] SUBSCRIBE with flags 0000", V311, "80 06 00 01 00 01 61 00", Malformed },
        { "[MQTT-2.2.2-1] UNSUBSCRIBE with flags 0011", V500, "A3 05 00 01 00 01 61", Malformed },
        { "[MQTT-2.2.2-2] PINGREQ with flags 0001", V311, "C1 00", Malformed },
        { "(2.1.2) packet type 0 is reserved", V311, "00 00", Malformed },
        { "(3.1.1 2.2.1) AUTH under 3.1.1", V311, "F0 00", Malformed },
        { "(3.12.1) trailing byte after PINGREQ", V311, "C0 01 00", Malformed },
        { "(3.4.2) trailing byte after 3.1.1 PUBACK", V311, "40 03 00 01 00", Malformed },
        { "(3.14) 3.1.1 DISCONNECT with a body", V311, "E0 01 00", Malformed },

        // UTF-8 strings
        { "[MQTT-1.5.3-1] ill-formed UTF-8 in topic", V311, "30 04 00 02 C3 28", Malformed },
        { "[MQTT-1.5.3-1] encoded surrogate U+D800 in topic", V311, "30 05 00 03 ED A0 80", Malformed },
        { "[MQTT-1.5.3-1] overlong encoding of '/'", V500, "30 06 00 02 C0 AF 00 00", Malformed },
        { "[MQTT-1.5.3-2] U+0000 in topic", V311, "30 05 00 03 61 00 62", Malformed },
        { "(1.5.4) string length runs past the end", V311, "30 04 00 05 61 62", Malformed },

        // PUBLISH
        { "[MQTT-3.3.2-2] '#' in PUBLISH topic", V311, "30 05 00 03 61 2F 23", MqttReasonCode.TopicNameInvalid },
        { "[MQTT-3.3.2-2] '+' in PUBLISH topic (v5)", V500, "30 04 00 01 2B 00", MqttReasonCode.TopicNameInvalid },
        { "[MQTT-3.3.1-4] PUBLISH QoS 3", V311, "36 05 00 01 61 00 01", Malformed },
        { "[MQTT-3.3.1-2] DUP with QoS 0", V311, "38 03 00 01 61", Malformed },
        { "[MQTT-2.2.1-3] packet id 0 with QoS 1", V311, "32 05 00 01 61 00 00", ProtocolError },
        { "[MQTT-2.2.1-3] packet id 0 with QoS 2 (v5)", V500, "34 06 00 01 61 00 00 00", ProtocolError },
        { "[MQTT-4.7.3-1] empty topic in 3.1.1", V311, "30 02 00 00", Malformed },
        { "(3.3.2.1) empty topic without Topic Alias in v5", V500, "30 03 00 00 00", ProtocolError },
        { "[MQTT-3.3.2-8] Topic Alias 0 (v5 3.3.2.3.4: 0x94)", V500, "30 07 00 01 61 03 23 00 00", MqttReasonCode.TopicAliasInvalid },
        { "(3.3.2.3.2) Payload Format Indicator 2", V500, "30 06 00 01 61 02 01 02", ProtocolError },

        // v5 properties
        { "(2.2.2.2) unknown property 0x05", V500, "30 06 00 01 61 02 05 00", Malformed },
        { "(2.2.2.2) Topic Alias twice", V500, "30 0A 00 01 61 06 23 00 01 23 00 02", ProtocolError },
        { "(2.2.2.2) Session Expiry Interval in PUBLISH", V500, "30 09 00 01 61 05 11 00 00 00 01", ProtocolError },
        { "(2.2.2.2) Topic Alias in PUBACK", V500, "40 07 00 01 00 03 23 00 01", ProtocolError },
        { "(3.8.2.1.2) Subscription Identifier 0", V500, "82 09 00 01 02 0B 00 00 01 61 00", ProtocolError },
        { "(3.8.2.1.2) Subscription Identifier twice in SUBSCRIBE", V500, "82 0B 00 01 04 0B 01 0B 02 00 01 61 00", ProtocolError },
        { "[MQTT-1.5.5-1] Property Length of 5 bytes", V500, "30 08 00 01 61 FF FF FF FF 01", Malformed },
        { "(2.2.2.1) Property Length runs past the end", V500, "30 05 00 01 61 05 01", Malformed },
        { "(2.2.2.1) property value runs past the end", V500, "30 06 00 01 61 02 02 00", Malformed },
        { "(3.1.2.11.3) Receive Maximum 0", V500, "10 11 00 04 4D 51 54 54 05 02 00 3C 03 21 00 00 00 01 63", ProtocolError },
        { "(3.1.2.11.4) Maximum Packet Size 0", V500, "10 13 00 04 4D 51 54 54 05 02 00 3C 05 27 00 00 00 00 00 01 63", ProtocolError },
        { "(3.14.2.1) DISCONNECT reason 0x05", V500, "E0 01 05", ProtocolError },
        { "(3.4.2.1) PUBACK reason 0x92", V500, "40 03 00 01 92", ProtocolError },
        { "(3.14.2.2) trailing byte after DISCONNECT properties", V500, "E0 03 00 00 00", Malformed },

        // CONNECT
        { "[MQTT-3.1.2-2] protocol level 6", V311, "10 0D 00 04 4D 51 54 54 06 02 00 3C 00 01 63", Unsupported },
        { "[MQTT-3.1.2-2] protocol level 3 with name MQTT", V311, "10 0D 00 04 4D 51 54 54 03 02 00 3C 00 01 63", Unsupported },
        { "[MQTT-3.1.2-2] protocol level 4 with name MQIsdp", V311, "10 0F 00 06 4D 51 49 73 64 70 04 02 00 3C 00 01 63", Unsupported },
        { "[MQTT-3.1.2-1] protocol name MQTX", V311, "10 0D 00 04 4D 51 54 58 04 02 00 3C 00 01 63", Unsupported },
        { "[MQTT-3.1.2-3] reserved connect flag set", V311, "10 0D 00 04 4D 51 54 54 04 03 00 3C 00 01 63", Malformed },
        { "[MQTT-3.1.2-11] Will QoS without Will Flag", V311, "10 0D 00 04 4D 51 54 54 04 0A 00 3C 00 01 63", Malformed },
        { "[MQTT-3.1.2-15] Will Retain without Will Flag", V311, "10 0D 00 04 4D 51 54 54 04 22 00 3C 00 01 63", Malformed },
        { "[MQTT-3.1.2-14] Will QoS 3", V311, "10 0D 00 04 4D 51 54 54 04 1E 00 3C 00 01 63", Malformed },
        { "[MQTT-3.1.2-22] Password without User Name in 3.1.1", V311, "10 10 00 04 4D 51 54 54 04 42 00 3C 00 01 63 00 01 70", Malformed },
        { "(3.1.3) CONNECT client id runs past the end", V311, "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 05 63", Malformed },
        { "[MQTT-3.2.2-1] CONNACK reserved flags", V311, "20 02 02 00", Malformed },

        // SUBSCRIBE / UNSUBSCRIBE / SUBACK
        { "[MQTT-3.8.3-3] SUBSCRIBE without filters", V311, "82 02 00 01", ProtocolError },
        { "[MQTT-3.8.3-3] SUBSCRIBE without filters (v5)", V500, "82 03 00 01 00", ProtocolError },
        { "[MQTT-2.2.1-3] SUBSCRIBE packet id 0", V311, "82 06 00 00 00 01 61 00", ProtocolError },
        { "[MQTT-3-8.3-4] SUBSCRIBE requested QoS 3", V311, "82 06 00 01 00 01 61 03", Malformed },
        { "[MQTT-3-8.3-4] SUBSCRIBE reserved option bit 2 in 3.1.1", V311, "82 06 00 01 00 01 61 04", Malformed },
        { "[MQTT-3.8.3-5] SUBSCRIBE reserved option bits 7-6 in v5", V500, "82 07 00 01 00 00 01 61 40", Malformed },
        { "(3.8.3.1) SUBSCRIBE Retain Handling 3", V500, "82 07 00 01 00 00 01 61 30", ProtocolError },
        { "(3.8.3) SUBSCRIBE filter without options byte", V311, "82 05 00 01 00 01 61", Malformed },
        { "[MQTT-3.10.3-2] UNSUBSCRIBE without filters", V311, "A2 02 00 01", ProtocolError },
        { "[MQTT-3.9.3-2] 3.1.1 SUBACK return code 0x03", V311, "90 03 00 01 03", Malformed },
        { "(3.9.3) v5 SUBACK reason 0x03", V500, "90 04 00 01 00 03", ProtocolError },
    };

    [Theory]
    [MemberData(nameof(Frames))]
    public void Decoder_should_reject_malformed_frame(string rule, MqttProtocolVersion version, string hex, MqttReasonCode expected)
    {
        var decoder = NewDecoder(version);
        var buffer = new ReadOnlySequence<byte>(Hex(hex));
        var error = Assert.Throws<MqttProtocolException>(() => decoder.TryDecode(ref buffer, out _));
        Assert.True(expected == error.ReasonCode, $"{rule}: expected {expected}, got {error.ReasonCode} ({error.Message})");
    }

    [Fact]
    public void Decoder_should_reject_a_packet_over_the_maximum_size_from_its_fixed_header_alone()
    {
        // PUBLISH announcing 16,383 bytes of body; only the three header bytes have arrived.
        var decoder = new MqttPacketDecoder(maxPacketSize: 1024);
        var buffer = new ReadOnlySequence<byte>(Hex("30 FF 7F"));
        var error = Assert.Throws<MqttProtocolException>(() => decoder.TryDecode(ref buffer, out _));
        Assert.Equal(MqttReasonCode.PacketTooLarge, error.ReasonCode);
    }

    [Fact]
    public void Decoder_should_accept_a_packet_of_exactly_the_maximum_size()
    {
        var decoder = new MqttPacketDecoder(maxPacketSize: 5);
        var buffer = new ReadOnlySequence<byte>(Hex("30 03 00 01 61"));
        Assert.True(decoder.TryDecode(ref buffer, out var packet));
        Assert.NotNull(packet);
    }

    [Fact]
    public void Fixed_header_reader_should_ask_for_more_bytes_while_the_length_continues()
    {
        Assert.False(MqttPacketDecoder.TryReadFixedHeader(Hex("30"), out _, out _, out _));
        Assert.False(MqttPacketDecoder.TryReadFixedHeader(Hex("30 FF FF FF"), out _, out _, out _));
        Assert.True(MqttPacketDecoder.TryReadFixedHeader(Hex("30 FF FF FF 7F"), out var first, out var length, out var header));
        Assert.Equal((0x30, 268_435_455, 5), (first, length, header));
    }

    [Fact]
    public void Decoder_should_accept_password_without_user_name_in_v5()
    {
        var packet = DecodeFrame(Hex("10 11 00 04 4D 51 54 54 05 42 00 3C 00 00 01 63 00 01 70"), V500);
        Assert.Equal(Broker.Protocol.MqttPacketType.Connect, packet.Type);
    }
}
