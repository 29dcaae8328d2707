using System.Collections.Concurrent;
using Akka.Actor;

namespace Broker.Operations;

/// <summary>
/// The clients connected to this node, for the management API. A connection enters itself once attached and leaves
/// when its actor stops, both in its own turn: no message, no watch per connection (a connect flood is thousands of
/// these a second). <see cref="ClientRegistryActor"/> answers the management requests from it.
/// </summary>
public sealed class ClientDirectory
{
    private readonly ConcurrentDictionary<string, Entry> _byClientId = new(StringComparer.Ordinal);

    /// <summary>This node's address as the management API names it (set once the actor system runs).</summary>
    public string NodeAddress { get; set; } = "";

    /// <summary>The client's entry; a connection of the same client id that was here before is replaced (taken over).</summary>
    public void Online(ClientInfo info, IActorRef connection) => _byClientId[info.ClientId] = new Entry(info, connection);

    /// <summary>Removes the client's entry if it is still <paramref name="connection"/>'s (not a newer connection's).</summary>
    public bool Offline(string clientId, IActorRef connection)
    {
        if (!_byClientId.TryGetValue(clientId, out var entry) || !entry.Connection.Equals(connection))
        {
            return false;
        }

        return _byClientId.TryRemove(new KeyValuePair<string, Entry>(clientId, entry));
    }

    public bool TryGet(string clientId, out ClientInfo info, out IActorRef connection)
    {
        if (_byClientId.TryGetValue(clientId, out var entry))
        {
            (info, connection) = (entry.Info, entry.Connection);
            return true;
        }

        (info, connection) = (null!, ActorRefs.Nobody);
        return false;
    }

    public int Count => _byClientId.Count;

    public List<ClientInfo> List() => _byClientId.Values.Select(e => e.Info).ToList();

    // A struct: kept inside the dictionary's node, not as an object of its own per connected client.
    private readonly record struct Entry(ClientInfo Info, IActorRef Connection);
}
