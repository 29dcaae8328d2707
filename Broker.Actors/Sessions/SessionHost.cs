using Akka.Actor;
using Broker.Cluster;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// One per node, named "session-host": the parent of the live sessions that run beside their connections on this
/// node (clean sessions; see <see cref="SessionEntity"/>, whose sharded entity keeps guarding the client id). It is
/// where publishes for them arrive, one <see cref="NodeDeliver"/> per publish and node, and hands each recipient its
/// <see cref="Deliver"/> in process.
/// <code>
///   topic entity ──NodeDeliver──► session host ──Deliver──► live session ──SendPublish──► connection
///   (any node)                    (the connection's node: every hop after the first stays in process)
/// </code>
/// A recipient that is no longer here (its connection closed while the publish was on its way) gets the delivery
/// through the session region, whose entity forwards it to a newer live session of the client or confirms and drops it.
/// </summary>
public sealed class SessionHost : UntypedActor
{
    public const string Name = "session-host";
    private readonly BrokerContext _context;
    private readonly Dictionary<(string ClientId, long Incarnation), (IActorRef Session, LiveQueueGauge Gauge)> _live = new();
    private readonly Dictionary<IActorRef, (string ClientId, long Incarnation)> _byRef = new();
    private readonly Dictionary<string, IActorRef> _latest = new(StringComparer.Ordinal);

    public SessionHost(BrokerContext context)
    {
        _context = context;
    }

    public static Props Props(BrokerContext context) =>
        Akka.Actor.Props.Create(() => new SessionHost(context)).WithMailbox(LeanMailbox.ConfigPath);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case NodeDeliver deliver:
                HandleNodeDeliver(deliver);
                break;
            case StartLiveSession start:
                HandleStart(start);
                break;
            case Operations.GetSessionInfo info when _latest.TryGetValue(info.ClientId, out var latest):
                latest.Forward(info);
                break;
            case Operations.GetSessionInfo info:
                _context.SessionRegion.Forward(info);
                break;
            case Terminated t:
                Ended(t.ActorRef);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// Hands each recipient its delivery. A QoS 1/2 publish asks every recipient to confirm that it stored the message;
    /// a live session is clean and keeps it in memory, so the message handed to it in process is as stored as it will
    /// be: the host confirms for all of them in one <see cref="DeliveryStored"/> (one message back per node, not one
    /// per subscriber). Except for a session whose queue is under pressure (its <see cref="LiveQueueGauge"/>): it gets
    /// the publisher's reply address and holds or refuses the delivery itself (SessionEntity.Flow.cs), or, once it refuses
    /// everything until it drains, is refused here in one answer per publish. A QoS 0 probe is
    /// confirmed by each subscriber's connection once written (back-pressure).
    /// </summary>
    private void HandleNodeDeliver(NodeDeliver nd)
    {
        var confirmHere = nd.AckTo is not null && nd.Message.QoS != Protocol.MqttQoS.AtMostOnce;
        var confirmed = 0;
        var refused = 0;
        foreach (var recipient in nd.Recipients)
        {
            var found = _live.TryGetValue((recipient.ClientId, recipient.Incarnation), out var live);
            if (found && confirmHere && live.Gauge.Refusing)
            {
                // Its queue refuses until it drains (a client that stopped reading): not taken, answered here.
                refused++;
                continue;
            }

            // A session whose queue is under pressure confirms (or holds) for itself.
            var here = found && confirmHere && live.Gauge.TryReserve(nd.Message.Payload.Length);
            var ackTo = here ? null : nd.AckTo;
            var deliver = new Deliver(recipient.ClientId, nd.Message, recipient.SharedFilter, nd.RetainedForFilter, ackTo, nd.AckId,
                nd.Origin, nd.PayloadId) { ConfirmedByHost = here };
            if (found)
            {
                live.Session.Tell(deliver);
                confirmed += here ? 1 : 0;
            }
            else if (nd.FromEntity)
            {
                // The session entity forwarded it to a live session that has ended since: a clean session ends with
                // its connection, and what was on its way to it is dropped (confirmed, so no publisher waits for it).
                if (deliver.AckTo is { } confirmTo)
                {
                    _context.Links.Tell(confirmTo, new DeliveryStored(deliver.AckId));
                }
            }
            else
            {
                _context.SessionRegion.Tell(deliver);
            }
        }

        if (confirmed > 0)
        {
            _context.Links.Tell(nd.AckTo!, new DeliveryStored(nd.AckId, confirmed));
        }

        if (refused > 0)
        {
            _context.Metrics.RefusedQueueFullAdd(refused);
            _context.Links.Tell(nd.AckTo!, new DeliveryStored(nd.AckId, refused, DeliveryOutcome.Refused));
        }
    }

    private void HandleStart(StartLiveSession start)
    {
        var clientId = start.Attach.ClientId;
        var gauge = new LiveQueueGauge(_context.Options.Sessions.MaxQueuedMessages, _context.Options.Sessions.MaxQueuedBytes);
        var session = Context.ActorOf(SessionEntity.LiveProps(clientId, _context, start.Incarnation, Sender, gauge),
            "s" + start.Incarnation.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Context.Watch(session);
        _live[(clientId, start.Incarnation)] = (session, gauge);
        _byRef[session] = (clientId, start.Incarnation);
        _latest[clientId] = session;
        session.Tell(start.Attach);
    }

    private void Ended(IActorRef session)
    {
        if (!_byRef.Remove(session, out var key))
        {
            return;
        }

        _live.Remove(key);
        if (_latest.TryGetValue(key.ClientId, out var latest) && latest.Equals(session))
        {
            _latest.Remove(key.ClientId);
        }
    }
}
