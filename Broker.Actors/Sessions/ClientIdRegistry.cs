using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Broker.Cluster;
using Broker.Operations;
using Broker.Persistence;

namespace Broker.Sessions;

/// <summary>
/// One per session shard, a sharded entity of the session region itself (entity id <see cref="EntityId"/>, placed in the
/// shard of the client ids it answers for): the front door of every CONNECT. It keeps each client id held once in the
/// cluster (<see cref="ClientIdClaims{TRef}"/>, whose rules it carries out):
/// <code>
///   CONNECT ─► connection ─AttachSession─► registry of the id's shard ─┬─ clean, nothing stored: StartLiveSession ─► session host (connection's node)
///                                                                       └─ otherwise: RegistryForward ─► the id's session entity (same shard)
/// </code>
/// A clean client (Clean Start, expiry 0) with nothing stored is an entry here, not an actor: its session runs beside
/// its connection, and the registry closes the older connection when the id connects again (0x8E). The session
/// host of a live session's node tells the registry when it ended (<see cref="DelegationEnded"/>); a node that leaves
/// takes its connections' claims with it. When the registry stops (its node leaves or fails), the live sessions it
/// held claim their ids from its next incarnation, as they do from a session entity.
/// </summary>
public sealed class ClientIdRegistry : UntypedActor
{
    /// <summary>The registry's entity id in every session shard: U+0000 is never part of a client id [MQTT-1.5.4-2].</summary>
    public const string EntityId = "\0client-ids";

    private readonly BrokerContext _context;
    private readonly ClientIdClaims<IActorRef> _claims = new();
    private readonly Dictionary<string, List<(object Message, IActorRef Sender)>> _asking = new(StringComparer.Ordinal);
    private readonly string _shardId;
    private ILoggingAdapter Log => _context.SessionLog;

    public ClientIdRegistry(BrokerContext context)
    {
        _context = context;
        _shardId = Uri.UnescapeDataString(Context.Parent.Path.Name);
    }

    public static Props Props(BrokerContext context) =>
        FactoryProps.Of(context, static c => new ClientIdRegistry(c), FactoryProps.Lean);

    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.MemberRemoved));

    /// <summary>
    /// A registry that failed stops instead of restarting empty: a host on another node learns that only from a stop
    /// (it watches the registry), and its live sessions then claim their ids from the registry's next incarnation.
    /// </summary>
    protected override void PostRestart(Exception reason) => Context.Stop(Self);

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        foreach (var host in _claims.Hosts())
        {
            if (Locality.IsLocal(host))
            {
                host.Tell(new OwnerStopped(Self)); // a host watches only a registry on another node
            }
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case AttachSession attach:
                Handle(attach.ClientId, attach, Sender, stored: null);
                break;
            case ClaimLiveSession reclaim:
                Handle(reclaim.ClientId, reclaim, Sender, stored: null);
                break;
            case GetSessionInfo info:
                if (_claims.TryGetClaim(info.ClientId, out var claim))
                {
                    claim.Host.Forward(info); // it asks the live session, or the entity when that ended meanwhile
                }
                else
                {
                    // The entity answers, or asks the live session it guards (whose host asks the entity back, AtEntity,
                    // if that ended meanwhile). Not numbered: it does not hold the id.
                    Context.Parent.Tell(new RegistryForward(info.ClientId, info, 0), Sender);
                }

                break;
            case DelegationEnded ended:
                _claims.Ended(ended.ClientId, ended.Incarnation);
                break;
            case RegistryEntityStopped stopped:
                _claims.EntityStopped(stopped.ClientId, stopped.Seq);
                break;
            case StoredAnswer { EntityId: { } clientId } answer:
                Answered(clientId, answer.Stored);
                break;
            case ClusterEvent.MemberRemoved removed:
                var address = removed.Member.Address;
                var dropped = _claims.NodeRemoved(host => host.Path.Address.Equals(address));
                if (dropped > 0)
                {
                    Log.Info("Client ids of shard {0}: {1} claims of connections on {2} dropped (the node left)", _shardId, dropped, address);
                }

                break;
            case SessionHandOff:
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Handle(string clientId, object message, IActorRef sender, bool? stored)
    {
        if (stored is null && _asking.TryGetValue(clientId, out var waiting))
        {
            waiting.Add((message, sender)); // in order behind what waits for the same id
            return;
        }

        // The session host of the live session's node: the connection's for an attach, the claiming session's for a claim.
        var host = _context.Nodes.HostAt((message is AttachSession at ? at.Connection : sender).Path.Address);
        var decision = message switch
        {
            AttachSession a => _claims.Attach(clientId, a.Connection,
                SessionLifecycle.RunsBesideConnection(a.Info, _context.Options.Sessions.CleanSessionsOnConnectionNode), stored,
                NewIncarnation(), host),
            ClaimLiveSession c => _claims.Reclaim(clientId, c.Connection, c.Incarnation, stored, host),
            _ => throw new InvalidOperationException(message.GetType().Name),
        };

        if (decision.TakenOver is { } old)
        {
            Log.Info("Session {ClientId} taken over by a new connection; the old one is closed (0x8E)", clientId);
            old.Tell(SessionTakenOver.Instance);
        }

        switch (decision.Action)
        {
            case ClaimAction.Forward:
                Context.Parent.Tell(new RegistryForward(clientId, message, decision.Seq), sender);
                break;
            case ClaimAction.Start when message is AttachSession attach:
                host.Tell(new StartLiveSession(attach, decision.Incarnation));
                break;
            case ClaimAction.AskStored:
                _asking[clientId] = [(message, sender)];
                _context.SessionDirectory.Tell(new IsStored(clientId, _shardId, Context.Parent, Peek: true));
                break;
            case ClaimAction.Granted when message is ClaimLiveSession granted:
                sender.Tell(new LiveSessionClaimed(granted.Incarnation));
                break;
            case ClaimAction.Refused:
                Log.Info("Session {ClientId}: a live session claimed the client id after its registry moved, but another connection holds it now", clientId);
                sender.Tell(SessionTakenOver.Instance);
                break;
        }
    }

    private void Answered(string clientId, bool stored)
    {
        if (!_asking.Remove(clientId, out var waiting))
        {
            return;
        }

        // The answer holds for all that waited: nothing else ran for the id in between.
        foreach (var (message, sender) in waiting)
        {
            Handle(clientId, message, sender, stored);
        }
    }

    private static long NewIncarnation() => Random.Shared.NextInt64(1, long.MaxValue);
}
