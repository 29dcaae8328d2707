using Broker.Protocol;

namespace Broker.Transport;

/// <summary>
/// Emitted downstream, once, when the decoder meets bad input; the decoder then discards everything else the channel
/// receives. The handler downstream answers with DISCONNECT (v5) carrying <c>Error.ReasonCode</c>, or closes (v3).
/// </summary>
public sealed record MqttDecodeError(MqttProtocolException Error);
