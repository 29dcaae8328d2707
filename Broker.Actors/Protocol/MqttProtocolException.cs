namespace Broker.Protocol;

/// <summary>
/// The one exception type the codec and the protocol rules throw for bad input. It carries the v5 reason code the
/// server answers with (DISCONNECT for v5, a plain close for v3.1.1) and, where one applies, the spec rule violated.
/// </summary>
public sealed class MqttProtocolException : Exception
{
    public MqttProtocolException(MqttReasonCode reasonCode, string message)
        : base(message)
    {
        ReasonCode = reasonCode;
    }

    public MqttReasonCode ReasonCode { get; }

    public static MqttProtocolException Malformed(string message) => new(MqttReasonCode.MalformedPacket, message);

    public static MqttProtocolException ProtocolError(string message) => new(MqttReasonCode.ProtocolError, message);
}
