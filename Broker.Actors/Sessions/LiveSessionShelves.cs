using Akka.Actor;

namespace Broker.Sessions;

/// <summary>
/// The parents of a node's live sessions: <see cref="Count"/> plain children of the <see cref="SessionHost"/>
/// ("session-host/live-0" …), taken in turn, instead of the host itself. A parent keeps its children in an immutable
/// map, and every child added or removed copies the map's path (about log2(children) nodes, which survive a young
/// collection and die at the next change): with every live session under the host that was about 14 nodes per
/// connect and per disconnect at 10,000 clean clients, the largest item of a clean connect's allocations; under 64
/// shelves about 7. A shelf supervises its sessions as the host did (<see cref="OneForOneStrategy"/>, default
/// decider) and tells the host when one ended (<see cref="ShelvedSessionEnded"/>).
/// </summary>
public sealed class LiveSessionShelves
{
    public const int Count = 64;
    private readonly ActorCell?[] _cells = new ActorCell?[Count];
    private int _next;

    /// <summary>Starts the shelves as children of the host (<paramref name="host"/>'s context).</summary>
    public static LiveSessionShelves Start(IActorContext host)
    {
        var shelves = new LiveSessionShelves();
        var hostRef = host.Self;
        for (var i = 0; i < Count; i++)
        {
            var slot = i;
            host.ActorOf(Props.Create(() => new Shelf(shelves, slot, hostRef)), "live-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return shelves;
    }

    /// <summary>Attaches a live session to the next shelf; null while that shelf has not started (the host takes it).</summary>
    public IActorRef? Attach(Props props, string name)
    {
        var slot = (int)((uint)++_next % Count); // the host's thread only
        return Volatile.Read(ref _cells[slot]) is { } cell ? cell.AttachChild(props, isSystemService: true, name) : null;
    }

    private sealed class Shelf : UntypedActor
    {
        private readonly IActorRef _host;

        public Shelf(LiveSessionShelves owner, int slot, IActorRef host)
        {
            _host = host;
            Volatile.Write(ref owner._cells[slot], (ActorCell)Context);
        }

        protected override SupervisorStrategy SupervisorStrategy() => new TellHost(_host);

        // A live session speaks to the host directly (NodeDirectory.SelfHost); anything sent to its parent goes there too.
        protected override void OnReceive(object message) => _host.Forward(message);
    }

    private sealed class TellHost(IActorRef host) : OneForOneStrategy(DefaultDecider)
    {
        public override void HandleChildTerminated(IActorContext actorContext, IActorRef child, IEnumerable<IInternalActorRef> children) =>
            host.Tell(new ShelvedSessionEnded(child));
    }
}

/// <summary>In process, a shelf to its session host: a live session ended.</summary>
public sealed record ShelvedSessionEnded(IActorRef Session) : INoSerializationVerificationNeeded;
