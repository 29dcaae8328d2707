using Akka.Actor;
using Akka.Event;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Transport;

namespace Broker.Sessions;

/// <summary>
/// The connection's behaviours once a session is attached: <c>Connected</c>, and <c>Reattaching</c> while a moved
/// persistent session recovers elsewhere. Plain switches over the message (UntypedActor), see ClientConnectionActor.cs.
/// </summary>
public sealed partial class ClientConnectionActor
{
    /// <summary>Waiting for a moved persistent session to recover elsewhere; the client's packets wait too.</summary>
    private void Reattaching(object message)
    {
        switch (message)
        {
            case SessionAttached attached:
                AttachAnswered();
                _sessionStarting = false;
                WatchSession(attached);
                Move(ConnectionEvent.SessionAttached);
                ResendUnanswered();
                Stash.UnstashAll();
                break;
            case AttachTimeout:
                _log.Warning("Client {ClientId} ({Address}): moved session did not answer; closing so that the client reconnects", _clientId, _remote);
                Disconnect(CloseRules.SessionDidNotReturn);
                break;
            case AttachRetry:
                RetryAttach();
                break;
            case SessionTakenOver:
                TakenOver(); // a newer connection of the client id took the moved session
                break;
            case SendPublish send:
                HandleSendPublish(send);
                break;
            case SendPacket send:
                HandleSendPacket(send);
                break;
            case RateResume:
                HandleRateResume();
                break;
            case PublishRouted r:
                InboundRouted(r.AckId, r.Deliveries);
                break;
            case DeliveryStored r:
                InboundStored(r.AckId, r.Count, r.Outcome);
                break;
            case AckSweep:
                SweepAcks();
                break;
            case KeepAliveCheck:
                CheckKeepAlive();
                break;
            case MqttPingReqPacket:
                Write(MqttPingRespPacket.Instance);
                break;
            case MqttDecodeError e:
                ProtocolViolation(e.Error.ReasonCode, e.Error.Message);
                break;
            case MqttPacket p:
                Unexpected(p);
                break;
            default:
                CommonReceives(message);
                break;
        }
    }

    private void Connected(object message)
    {
        switch (message)
        {
            case MqttPacket packet when _sessionDormant && ConnectionLifecycle.NeedsStartedSession(packet):
                WakeSession();
                StashPacket(); // handled once the session answers, with what the client sent after it
                break;
            case SessionAttached attached when _sessionDormant:
                // Its host started the dormant session on its own (the client id's registry stopped): it is the session now.
                _sessionDormant = false;
                WatchSession(attached);
                break;
            case MqttPacket or MqttDecodeError when _aclPending || _subscribing:
                // Behind a packet that waits for the HTTP ACL service, or behind a SUBSCRIBE not yet answered (what the
                // client sends after it, a PUBLISH to the topic it just subscribed to, finds the subscription): order is kept.
                StashPacket();
                break;
            case MqttPublishPacket publish:
                HandlePublish(publish);
                break;
            case SendPublish send:
                HandleSendPublish(send);
                break;
            case SendPacket send:
                HandleSendPacket(send);
                break;
            case MqttPubAckPacket p:
                _session!.Tell(new OutboundAck(Self, MqttPacketType.PubAck, p.PacketId, p.ReasonCode));
                break;
            case MqttPubRecPacket p:
                _session!.Tell(new OutboundAck(Self, MqttPacketType.PubRec, p.PacketId, p.ReasonCode));
                break;
            case MqttPubCompPacket p:
                _session!.Tell(new OutboundAck(Self, MqttPacketType.PubComp, p.PacketId, p.ReasonCode));
                break;
            case MqttPubRelPacket p:
                _inbound.Release(p.PacketId);
                _session!.Tell(new InboundRelease(Self, p.PacketId));
                break;
            case MqttSubscribePacket subscribe:
                HandleSubscribe(subscribe);
                break;
            case MqttUnsubscribePacket unsubscribe:
                HandleUnsubscribe(unsubscribe);
                break;
            case MqttPingReqPacket:
                Write(MqttPingRespPacket.Instance);
                break;
            case MqttDisconnectPacket disconnect:
                HandleDisconnect(disconnect);
                break;
            case MqttDecodeError e:
                ProtocolViolation(e.Error.ReasonCode, e.Error.Message);
                break;
            case MqttPacket p:
                Unexpected(p); // a second CONNECT [MQTT-3.1.0-2], AUTH, or a packet only a server sends: a protocol error
                break;
            case RateResume:
                HandleRateResume();
                break;
            case InboundStoreFailed f:
                HandleInboundStoreFailed(f);
                break;
            case InboundQos2Held h:
                Qos2Held(h.PacketId);
                break;
            case PublishRouted r:
                InboundRouted(r.AckId, r.Deliveries);
                break;
            case DeliveryStored r:
                InboundStored(r.AckId, r.Count, r.Outcome);
                break;
            case SessionTakenOver:
                TakenOver();
                break;
            case KeepAliveCheck:
                CheckKeepAlive();
                break;
            case AckSweep:
                SweepAcks();
                break;
            case Terminated t:
                HandleSessionEnded(t.ActorRef);
                break;
            case LiveSessionStopped stopped:
                HandleSessionEnded(stopped.Session);
                break;
            default:
                CommonReceives(message);
                break;
        }
    }

    /// <summary>
    /// The dormant session is needed: its host starts it, and the live session answers as after any attach
    /// (<see cref="Reattaching"/> waits for it, the client's packets with it). Should this connection end first, the host
    /// learns it (PostStop: AttachAbandoned) and tells the session.
    /// </summary>
    private void WakeSession()
    {
        _sessionDormant = false;
        _sessionStarting = true;
        _session!.Tell(new WakeLiveSession(Self)); // _session is the host
        _session = null;
        _besideSession = null;
        _clock.AttachDeadline = Environment.TickCount64 + (long)AttachAnswerTimeout.TotalMilliseconds;
        Move(ConnectionEvent.SessionStarting);
    }

    private void TakenOver()
    {
        _log.Info("Client {ClientId} ({Address}) taken over by a new connection", _clientId, _remote);
        _session = null; // the session has moved on; do not detach it
        Disconnect(CloseRules.TakenOver);
    }

    private void HandleSessionEnded(IActorRef session)
    {
        if (!session.Equals(_session))
        {
            return;
        }

        _session = null;
        if (ConnectionLifecycle.ReattachesWhenSessionEnds(_grantedExpiry) && _connectReceived)
        {
            // The session entity moved (its node left and handed the shard off, or failed): a persistent session
            // is in the journal, so re-attach to it wherever it recovers, without troubling the client.
            _log.Info("Client {ClientId} ({Address}): session moved; re-attaching", _clientId, _remote);
            var info = new ConnectionInfo(_version, CleanStart: false, _grantedExpiry, _will, _receiveMaximum);
            RequestAttach(new AttachSession(_clientId, Self, info), TimeSpan.FromSeconds(30));
            Move(ConnectionEvent.SessionMoved);
            return;
        }

        // A clean session lived only in memory: it is gone, so the client must start over.
        _log.Warning("Client {ClientId} ({Address}): session stopped; closing so that the client reconnects", _clientId, _remote);
        Disconnect(CloseRules.SessionStopped);
    }
}
