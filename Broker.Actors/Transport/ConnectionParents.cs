using Akka.Actor;

namespace Broker.Transport;

/// <summary>
/// Where a node's connection actors are created: under <see cref="Count"/> plain parent actors
/// ("/user/connections-0" …) taken in turn, instead of all under the user guardian.
/// <para>
/// Two costs of creating an actor grow with what its parent already holds or with how it is created, and a connect
/// flood pays both for every client (measured: about a third of the allocations of a clean connect):
/// <list type="bullet">
/// <item>A parent keeps its children in an immutable map: every child added or removed copies the map's path, about
/// log2(children) nodes. With every connection under the guardian that is about 14 nodes per connect and per
/// disconnect at 19,000 connections; under 128 parents about 7.</item>
/// <item>A child created by <c>ActorOf</c> in a clustered system goes through the remote provider's deployment
/// merge (deployment lookups and configuration objects built and merged for every actor). A connection actor is
/// never deployed remotely, so it is attached as a local system-service child
/// (<see cref="ActorCell.AttachChild"/> with <c>isSystemService</c>), which skips that merge. Attaching a child is
/// safe from any thread: it is how <see cref="ActorSystem.ActorOf(Props, string)"/> attaches top-level actors.</item>
/// </list>
/// Nothing else changes for the connection actor: its parent supervises it with the same default strategy as the
/// user guardian, and a node's stop stops the parents and so the connections.
/// </para>
/// </summary>
public sealed class ConnectionParents
{
    public const int Count = 128;
    private readonly ActorCell?[] _cells = new ActorCell?[Count];
    private ActorSystem? _system;
    private int _next;

    /// <summary>Starts the parents; connections made before a parent is up are attached to the user guardian.</summary>
    public void Start(ActorSystem system)
    {
        _system = system;
        for (var i = 0; i < Count; i++)
        {
            var slot = i;
            system.ActorOf(Props.Create(() => new Parent(this, slot)), "connections-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Every parent has started (connections made before go under the user guardian).</summary>
    public bool Ready => Array.TrueForAll(_cells, c => c is not null);

    /// <summary>Creates a connection actor under the next parent.</summary>
    public IActorRef Create(ActorSystem system, Props props)
    {
        var slot = (int)((uint)Interlocked.Increment(ref _next) % Count);
        return Volatile.Read(ref _cells[slot]) is { } cell && ReferenceEquals(_system, system)
            ? cell.AttachChild(props, isSystemService: true)
            : system.ActorOf(props);
    }

    private sealed class Parent : UntypedActor
    {
        public Parent(ConnectionParents owner, int slot)
        {
            Volatile.Write(ref owner._cells[slot], (ActorCell)Context);
        }

        protected override void OnReceive(object message) => Unhandled(message);
    }
}
