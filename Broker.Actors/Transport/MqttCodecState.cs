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

    /// <summary>
    /// Decoded packets handed to the connection actor and not yet processed by it (incremented by the channel handler,
    /// decremented by the actor). Past <see cref="BacklogHigh"/> the channel stops reading until the actor has worked
    /// the backlog down to <see cref="BacklogLow"/>: a publisher faster than its connection actor waits in TCP instead
    /// of filling the actor's mailbox without bound (measured: 200 MB of decoded publishes in a fan-in flood).
    /// </summary>
    public int PendingPackets;

    public const int BacklogHigh = 1024;

    public const int BacklogLow = 256;

    /// <summary>Reading is off because of <see cref="PendingPackets"/> (set and cleared on the channel's event loop).</summary>
    public bool PausedByBacklog;

    /// <summary>Reading is off because the connection actor asked (QoS 1/2 window, probes, rate limit).</summary>
    public volatile bool PausedByActor;

    /// <summary>Applies both reasons to the channel; call on its event loop.</summary>
    public void ApplyAutoRead(DotNetty.Transport.Channels.IChannel channel) =>
        channel.Configuration.AutoRead = !PausedByBacklog && !PausedByActor;
}
