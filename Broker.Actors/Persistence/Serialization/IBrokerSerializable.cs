namespace Broker.Persistence.Serialization;

/// <summary>
/// Marks every message that may cross nodes and every journal event and snapshot: they are all written by
/// <see cref="BrokerSerializer"/>, never by Akka's default JSON serializer.
/// </summary>
public interface IBrokerSerializable
{
}
