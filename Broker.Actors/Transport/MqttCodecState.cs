using Broker.Protocol;

namespace Broker.Transport;

/// <summary>
/// The protocol level of one channel, shared by its <see cref="MqttDecoderHandler"/> (which sets it when CONNECT is
/// decoded) and its <see cref="MqttEncoderHandler"/> (which encodes at it). Both run on the channel's event loop;
/// the field is volatile so a write from elsewhere (e.g. the connection actor) is seen by the next encode.
/// </summary>
public sealed class MqttCodecState
{
    public volatile MqttProtocolVersion Version = MqttProtocolVersion.V311;

    /// <summary>Where the handlers count the bytes they read and write (null: not counted).</summary>
    public Cluster.BrokerMetrics? Metrics { get; set; }
}
