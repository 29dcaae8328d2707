using System.Buffers;
using BenchmarkDotNet.Attributes;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;

namespace Broker.Benchmarks;

/// <summary>
/// PUBLISH encode and decode, the codec's hot path: 64-byte and 1 KB payloads, QoS 0 and 1, MQTT 3.1.1 and 5.0.
/// Decode includes framing (<see cref="MqttPacketDecoder.TryDecode"/>); encode writes into a reused buffer, so the
/// allocations reported are the decoder's packet, topic string and payload copy only.
/// </summary>
[MemoryDiagnoser]
public class PublishCodecBenchmarks
{
    private MqttPacketDecoder _decoder = null!;
    private MqttPublishPacket _packet = null!;
    private byte[] _frame = null!;
    private byte[] _destination = null!;

    [Params(64, 1024)]
    public int PayloadSize { get; set; }

    [Params(MqttQoS.AtMostOnce, MqttQoS.AtLeastOnce)]
    public MqttQoS QoS { get; set; }

    [Params(MqttProtocolVersion.V311, MqttProtocolVersion.V500)]
    public MqttProtocolVersion Version { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _packet = new MqttPublishPacket
        {
            Topic = "sensors/building-7/floor-3/temperature",
            Payload = new byte[PayloadSize],
            QoS = QoS,
            PacketId = QoS == MqttQoS.AtMostOnce ? (ushort)0 : (ushort)4242,
        };
        _frame = MqttPacketEncoder.Encode(_packet, Version);
        _destination = new byte[_frame.Length];
        _decoder = new MqttPacketDecoder(1 << 20) { ProtocolVersion = Version };
    }

    [Benchmark]
    public MqttPacket? DecodePublish()
    {
        var buffer = new ReadOnlySequence<byte>(_frame);
        _decoder.TryDecode(ref buffer, out var packet);
        return packet;
    }

    [Benchmark]
    public int EncodePublish() => MqttPacketEncoder.Encode(_packet, Version, _destination);
}
