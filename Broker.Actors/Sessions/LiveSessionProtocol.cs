using Akka.Actor;
using Broker.Cluster;

namespace Broker.Sessions;

/// <summary>
/// Session entity to the session host of a connection's node: run the client's clean session there, as a live
/// session of this <see cref="Incarnation"/>, and attach the connection of <see cref="Attach"/> to it. The sender is
/// the client id's session entity, which keeps guarding the client id (takeover) while the live session runs.
/// </summary>
public sealed record StartLiveSession(AttachSession Attach, long Incarnation) : Persistence.Serialization.IBrokerSerializable;

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
