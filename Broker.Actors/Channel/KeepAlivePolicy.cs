namespace Broker.Channel;

/// <summary>What a keep-alive check finds.</summary>
public enum KeepAliveVerdict : byte
{
    /// <summary>A packet came within one and a half keep-alive periods (or there is no keep alive).</summary>
    Alive,

    /// <summary>The broker stopped reading the client (back-pressure): its silence is the broker's, start counting again.</summary>
    Paused,

    /// <summary>One and a half periods passed without a packet: close (v5 DISCONNECT 0x8D) [MQTT-3.1.2-24].</summary>
    Expired,
}

/// <summary>The keep alive a connection is held to, and what CONNACK says about it.</summary>
/// <param name="Seconds">The period the broker enforces (closing after one and a half of it without a packet); 0 = none.</param>
/// <param name="ServerKeepAlive">The v5 CONNACK Server Keep Alive property, or null when the client's own value stands.</param>
public readonly record struct KeepAliveGrant(ushort Seconds, ushort? ServerKeepAlive);

/// <summary>
/// Decides the keep alive of a connection from the client's CONNECT and two settings:
/// <list type="bullet">
/// <item><c>Mqtt:ServerKeepAlive</c> (above 0): every v5 client is held to it and told so in CONNACK (MQTT-v5.0
///   3.2.2.3.14: "the Client MUST use this value instead of the Keep Alive value the Client sent on CONNECT").</item>
/// <item><c>Mqtt:MaxKeepAlive</c> (above 0, Mosquitto's <c>max_keepalive</c>): a keep alive above it, or 0 (none), is
///   lowered to it; shorter ones stand. A v5 client is told in CONNACK; 3.1.1 and 3.1 have no way to tell the client,
///   so the broker just enforces the lower value (a client that pings less often than that is closed).</item>
/// </list>
/// and <see cref="Check"/> says when a silent client has outlived it. Pure: no clock, no actor.
/// </summary>
public static class KeepAlivePolicy
{
    public static KeepAliveGrant Resolve(ushort clientKeepAlive, bool v5, int serverKeepAlive, int maxKeepAlive)
    {
        if (v5 && serverKeepAlive > 0)
        {
            var server = (ushort)(maxKeepAlive > 0 ? Math.Min(serverKeepAlive, maxKeepAlive) : serverKeepAlive);
            return new KeepAliveGrant(server, server);
        }

        if (maxKeepAlive > 0 && (clientKeepAlive == 0 || clientKeepAlive > maxKeepAlive))
        {
            var lowered = (ushort)maxKeepAlive;
            return new KeepAliveGrant(lowered, v5 ? lowered : null);
        }

        return new KeepAliveGrant(clientKeepAlive, null);
    }

    /// <summary>
    /// [MQTT-3.1.2-24] (MQTT 3.1.1; [MQTT-3.1.2-22] in MQTT-v5.0) "If the Keep Alive value is non-zero and the Server
    /// does not receive a Control Packet from the Client within one and a half times the Keep Alive time period, it MUST
    /// disconnect the Network Connection to the Client as if the network had failed." <paramref name="lastPacketMs"/> and <paramref name="nowMs"/> are on one
    /// millisecond clock; a client the broker stopped reading is not timed out for the silence it was made to keep.
    /// </summary>
    public static KeepAliveVerdict Check(int keepAliveSeconds, long lastPacketMs, long nowMs, bool readingPaused)
    {
        if (readingPaused)
        {
            return KeepAliveVerdict.Paused;
        }

        return keepAliveSeconds > 0 && nowMs - lastPacketMs > keepAliveSeconds * 1500L ? KeepAliveVerdict.Expired : KeepAliveVerdict.Alive;
    }
}
