using Broker.Protocol;

namespace Broker.Sessions;

/// <summary>
/// Topic aliases of one connection in both directions (MQTT-v5.0 3.3.2.3.4): the client's aliases for what it
/// publishes, up to the server's Topic Alias Maximum, and the server's for what it sends, up to the client's. Each
/// direction's map is created on first use (most connections never use aliases). Pure.
/// </summary>
public sealed class TopicAliases
{
    private readonly int _inboundMaximum;
    private Dictionary<ushort, string>? _inbound;
    private Dictionary<string, ushort>? _outbound;

    /// <param name="inboundMaximum">The server's Topic Alias Maximum (in its CONNACK).</param>
    /// <param name="outboundMaximum">The client's Topic Alias Maximum (in its CONNECT; 0: the server sends none).</param>
    public TopicAliases(int inboundMaximum, ushort outboundMaximum)
    {
        _inboundMaximum = inboundMaximum;
        OutboundMaximum = outboundMaximum;
    }

    public ushort OutboundMaximum { get; }

    /// <summary>
    /// The topic of an incoming PUBLISH with alias <paramref name="alias"/> (non-zero) and topic <paramref name="topic"/>:
    /// a topic with an alias sets the alias; an empty topic uses it. Null with the reason code and why when the
    /// client broke the rules (a protocol error that closes the connection).
    /// </summary>
    public string? Resolve(ushort alias, string topic, bool v5, out MqttReasonCode violation, out string why)
    {
        violation = MqttReasonCode.Success;
        why = "";
        if (!v5 || alias > _inboundMaximum)
        {
            // 0x94: 3.1.1 has no aliases; v5 above the maximum the server granted.
            violation = MqttReasonCode.TopicAliasInvalid;
            why = $"topic alias {alias} out of range";
            return null;
        }

        if (topic.Length > 0)
        {
            (_inbound ??= new())[alias] = topic;
            return topic;
        }

        if (_inbound is not null && _inbound.TryGetValue(alias, out var known))
        {
            return known;
        }

        violation = MqttReasonCode.ProtocolError;
        why = $"unknown topic alias {alias}";
        return null;
    }

    /// <summary>
    /// The alias to send <paramref name="topic"/> with, without taking it: one the client knows already
    /// (<paramref name="known"/>: the topic is left out), the next free one (the client learns it from a packet with
    /// topic and alias, and it is taken by <see cref="RememberOutbound"/> once that packet is sent), or 0 (plainly) once
    /// every alias the client allows is taken. Channel.OutboundPublish decides.
    /// </summary>
    public ushort OutboundAlias(string topic, out bool known)
    {
        known = false;
        if (OutboundMaximum == 0)
        {
            return 0;
        }

        if (_outbound is not null && _outbound.TryGetValue(topic, out var alias))
        {
            known = true;
            return alias;
        }

        var count = _outbound?.Count ?? 0;
        return count < OutboundMaximum ? (ushort)(count + 1) : (ushort)0;
    }

    /// <summary>The client learns <paramref name="alias"/> for <paramref name="topic"/> (from <see cref="OutboundAlias"/>) from a packet being sent.</summary>
    public void RememberOutbound(string topic, ushort alias) => (_outbound ??= new(StringComparer.Ordinal))[topic] = alias;
}
