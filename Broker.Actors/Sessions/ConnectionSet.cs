using System.Collections.Concurrent;
using Akka.Actor;

namespace Broker.Sessions;

/// <summary>
/// The connection actors of this node, so that a graceful stop can tell each of them (v5: DISCONNECT 0x8B). Before,
/// each connection subscribed to the event stream, whose subscribe and unsubscribe copy the subscriber list of the
/// class (and register with one unsubscriber actor that watches every subscriber): a third of the broker's CPU in a
/// connect flood, measured (docs/benchmarks.md, "Connections"). Adding and removing here is O(1) and lock-free.
/// </summary>
public sealed class ConnectionSet
{
    private readonly ConcurrentDictionary<IActorRef, byte> _connections = new();

    public int Count => _connections.Count;

    public void Add(IActorRef connection) => _connections.TryAdd(connection, 0);

    public void Remove(IActorRef connection) => _connections.TryRemove(connection, out _);

    /// <summary>Tells every connection <paramref name="message"/>.</summary>
    public void TellAll(object message)
    {
        foreach (var (connection, _) in _connections)
        {
            connection.Tell(message);
        }
    }
}
