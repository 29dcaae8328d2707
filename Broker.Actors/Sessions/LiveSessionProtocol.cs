using Akka.Actor;
using Akka.Event;
using Broker.Cluster;

namespace Broker.Sessions;

/// <summary>
/// Session entity to the session host of a connection's node: run the client's clean session there, as a live
/// session of this <see cref="Incarnation"/>, and attach the connection of <see cref="Attach"/> to it. The sender is
/// the client id's session entity, which keeps guarding the client id (takeover) while the live session runs.
/// </summary>
public sealed record StartLiveSession(AttachSession Attach, long Incarnation, byte[]? State = null, bool Present = false)
    : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// The entity of a persistent session that runs beside its client's connection (<see cref="StartLiveSession.State"/>)
/// asks for it back, through the live session's host: the client connected elsewhere, or left.
/// </summary>
public sealed record ReturnSession(string ClientId, long Incarnation) : Persistence.Serialization.IBrokerSerializable;

/// <summary>A persistent session beside its connection tells its entity that its client left: take the session back.</summary>
public sealed record ReturnWanted(long Incarnation) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// A persistent session beside its connection hands its state back to its entity (as <see cref="StartLiveSession.State"/>
/// came: the highest sequence number stored, then the snapshot), every write stored. <see cref="Connection"/>: still
/// attached (the entity takes it over); <see cref="Leaving"/>: how the client left, for the entity to carry out.
/// </summary>
public sealed record SessionReturned(long Incarnation, byte[] State, IActorRef? Connection, DetachSession? Leaving)
    : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// A live session whose session entity stopped (its node left or failed) claims its client id from the entity's new
/// incarnation; answered with <see cref="LiveSessionClaimed"/>, or <see cref="SessionTakenOver"/> when another
/// connection holds the client id by now.
/// </summary>
public sealed record ClaimLiveSession(string ClientId, IActorRef Connection, long Incarnation) : IWithClientId, Persistence.Serialization.IBrokerSerializable;

public sealed record LiveSessionClaimed(long Incarnation) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// In process, live session to its session host: the session subscribes to the exact topic <see cref="Topic"/> (not
/// shared). Answered with <see cref="Routing.TopicSubscribed"/> once this node's route to the topic is stored
/// (see <see cref="LocalRouteTable{TWaiter}"/>).
/// </summary>
public sealed record AddLocalRoute(string Topic, string ClientId, long Incarnation, long RequestId);

/// <summary>In process, live session to its session host: the session no longer subscribes to <see cref="Topic"/>.</summary>
public sealed record RemoveLocalRoute(string Topic, string ClientId, long Incarnation);

/// <summary>In process, a live session to its connection as it stops (instead of a watch; see <see cref="SessionAttached.Beside"/>).</summary>
public sealed record LiveSessionStopped(IActorRef Session) : INoSerializationVerificationNeeded, IDeadLetterSuppression;

/// <summary>In process, a connection to its live session as it stops (instead of a watch; see <see cref="SessionAttached.Beside"/>).</summary>
public sealed record ConnectionStopped(IActorRef Connection) : INoSerializationVerificationNeeded, IDeadLetterSuppression;

/// <summary>
/// In process, session host to a clean client's connection: the client is attached (CONNACK, Session Present 0), but its
/// session has not started; the host keeps what would start it (<c>Sessions:StartCleanSessionsOnDemand</c>). The
/// connection routes its QoS 0/1 publishes itself meanwhile, and asks for the session (<see cref="WakeLiveSession"/>)
/// before the first packet that needs one: a subscription, a QoS 2 message, an acknowledgement. The sender (the host)
/// stands in for the session until then: the connection's end (<see cref="ConnectionStopped"/>) reaches it there.
/// </summary>
public sealed record SessionDormant(long Incarnation) : INoSerializationVerificationNeeded;

/// <summary>
/// In process, a connection to its node's session host: start its dormant session now. The live session answers the
/// connection with <see cref="SessionAttached"/>, as after any start.
/// </summary>
public sealed record WakeLiveSession(IActorRef Connection) : INoSerializationVerificationNeeded;

/// <summary>
/// In process, a connection to its node's session host as it stops before its session answered the attach: a live
/// session started for it (or about to be) learns it from the host, since it never learned of the connection.
/// <see cref="Incarnation"/>: the dormant session it asked to start (<see cref="WakeLiveSession"/>), 0 for a first attach.
/// </summary>
public sealed record AttachAbandoned(IActorRef Connection, string ClientId, long Incarnation = 0) : INoSerializationVerificationNeeded;

/// <summary>
/// Session host to the owner of a live session (the client id's registry, or its session entity guarding it): the live
/// session of <see cref="Incarnation"/> ended. Sent to an owner on any node (a guard also watches a connection on
/// another node, which may fail; see <see cref="Locality"/>).
/// </summary>
public sealed record DelegationEnded(string ClientId, long Incarnation) : Persistence.Serialization.IBrokerSerializable, IDeadLetterSuppression;

/// <summary>
/// In process, a client id's registry (<see cref="ClientIdRegistry"/>) to the id's session entity in the same shard:
/// <see cref="Message"/>, numbered <see cref="Seq"/>. The entity unwraps it and reports the last number it saw when it
/// stops (<see cref="RegistryEntityStopped"/>).
/// </summary>
public sealed record RegistryForward(string ClientId, object Message, long Seq) : INoSerializationVerificationNeeded;

/// <summary>In process, a session entity to its shard's registry as it stops: the last <see cref="RegistryForward"/> it saw.</summary>
public sealed record RegistryEntityStopped(string ClientId, long Seq) : IWithClientId, INoSerializationVerificationNeeded, IDeadLetterSuppression;

/// <summary>
/// Its guard (<see cref="Owner"/>, the client id's session entity) stopped: session host to a live session, and a guard
/// on the host's node to the host as it stops. The host watches the guards of its live sessions that are on other
/// nodes, so that each live session watches nothing.
/// </summary>
public sealed record OwnerStopped(IActorRef Owner) : INoSerializationVerificationNeeded, IDeadLetterSuppression;

/// <summary>
/// The actors of one clean client (its connection, its live session beside it, the client id's guard) watch each other
/// only across nodes: on one node, each tells the others as it stops (a watch, or Akka's Become, moves an actor's
/// state into an object of about 600 bytes with watch collections and a behaviour stack, for the actor's life).
/// </summary>
public static class Locality
{
    public static bool IsLocal(IActorRef actor) => actor is IInternalActorRef { IsLocal: true };
}

/// <summary>In process, live session to its session host: <see cref="Owner"/> guards it now (after a claim); watch it.</summary>
public sealed record WatchOwner(IActorRef Owner) : INoSerializationVerificationNeeded;
