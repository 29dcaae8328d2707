using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>SUBSCRIBE and UNSUBSCRIBE (MQTT-3.8 to 3.11): the session's table, the routes, retained messages.</summary>
public sealed partial class SessionEntity
{
    private Dictionary<long, PendingSubAck>? _pendingSubAcks; // created on the first SUBSCRIBE
    private Dictionary<long, long>? _registrationToSubAck;
    private long _nextRequestId;

    private void HandleSubscribe(SessionSubscribe subscribe)
    {
        if (!subscribe.Connection.Equals(_connection))
        {
            return;
        }

        var packet = subscribe.Packet;
        var v5 = _version == MqttProtocolVersion.V500;
        var codes = ImmutableArray.CreateBuilder<MqttReasonCode>(packet.Subscriptions.Length);
        var pending = new PendingSubAck(packet.PacketId, subscribe.Connection);
        foreach (var sub in packet.Subscriptions)
        {
            if (!MqttTopic.IsValidTopicFilter(sub.TopicFilter))
            {
                // MQTT-v5.0 3.9.3: 0x8F Topic Filter invalid; 3.1.1 has only 0x80 Failure [MQTT-3.9.3-2].
                codes.Add(v5 ? MqttReasonCode.TopicFilterInvalid : MqttReasonCode.UnspecifiedError);
                continue;
            }

            var existed = _subscriptions.ContainsKey(sub.TopicFilter);
            if (!existed && _context.Options.Mqtt.MaxSubscriptionsPerClient is > 0 and var max && _subscriptions.Count >= max)
            {
                // Mqtt:MaxSubscriptionsPerClient: v5 0x97 Quota exceeded; 3.1.1 has only 0x80 Failure.
                _context.Metrics.LimitRejected();
                codes.Add(v5 ? MqttReasonCode.QuotaExceeded : MqttReasonCode.UnspecifiedError);
                continue;
            }

            var options = new SubscriptionOptions(
                sub.QoS, sub.NoLocal, sub.RetainAsPublished, sub.RetainHandling, packet.SubscriptionIdentifier);
            Store(new SubscriptionAdded(sub.TopicFilter, options));
            codes.Add((MqttReasonCode)(byte)sub.QoS);

            var requestId = ++_nextRequestId;
            pending.Registrations.Add(requestId);
            if (Register(sub.TopicFilter, requestId))
            {
                pending.Routes[requestId] = sub.TopicFilter;
            }
            var stored = ++_nextRequestId;
            if (IndexRoute(sub.TopicFilter, () => SubscriptionConfirmed(stored)))
            {
                pending.Registrations.Add(stored); // the SUBACK also waits for the durable route
            }

            var shared = MqttTopic.TryParseShared(sub.TopicFilter, out _, out _);
            var sendRetained = !shared && sub.RetainHandling switch
            {
                MqttRetainHandling.SendAtSubscribe => true,
                MqttRetainHandling.SendAtSubscribeIfNew => !existed,
                _ => false,
            };
            if (sendRetained)
            {
                pending.RetainedFilters.Add(sub.TopicFilter);
            }
        }

        pending.Codes = codes.MoveToImmutable();
        var key = ++_nextRequestId;
        foreach (var r in pending.Registrations)
        {
            (_registrationToSubAck ??= new())[r] = key;
        }

        (_pendingSubAcks ??= new())[key] = pending;
        TryCompleteSubAck(key);
        if (_pendingSubAcks.Count > 0 && !Timers.IsTimerActive(RegistrationRetry.Instance))
        {
            Timers.StartPeriodicTimer(RegistrationRetry.Instance, RegistrationRetry.Instance, RegistrationRetryEvery);
        }
    }

    private void SubscriptionConfirmed(long requestId)
    {
        if (_wakeRegistrations?.Remove(requestId) == true)
        {
            AnswerWakersWhenRouted();
            return;
        }

        if (requestId == 0 || _registrationToSubAck is null || !_registrationToSubAck.Remove(requestId, out var key))
        {
            return;
        }

        if (_pendingSubAcks is not null && _pendingSubAcks.TryGetValue(key, out var pending))
        {
            pending.Registrations.Remove(requestId);
            pending.Routes.Remove(requestId);
            TryCompleteSubAck(key);
        }
    }

    private void TryCompleteSubAck(long key)
    {
        var pending = _pendingSubAcks![key];
        if (pending.Registrations.Count > 0)
        {
            return;
        }

        _pendingSubAcks!.Remove(key);
        if (_pendingSubAcks.Count == 0)
        {
            Timers.Cancel(RegistrationRetry.Instance);
        }

        if (!pending.Connection.Equals(_connection))
        {
            return;
        }

        // Every route exists on every node now, so nothing published after this SUBACK can miss the subscription.
        _connection.Tell(new SendPacket(new MqttSubAckPacket { PacketId = pending.PacketId, ReasonCodes = pending.Codes }));
        foreach (var filter in pending.RetainedFilters)
        {
            RequestRetained(filter);
        }
    }

    /// <summary>
    /// Asks again for the routes of a SUBSCRIBE still unanswered after <see cref="RegistrationRetryEvery"/>. A route
    /// request travels through the topic region to wherever the topic's shard lives; when that node dies before it
    /// arrives, nothing answers, and without this the SUBACK (which waits for every route) never went: the client
    /// waited forever. Asking again is harmless: a topic entity answers a subscriber it has already. Until the dead
    /// node is removed and its shards move the request is lost again; the retry keeps going while anything is pending.
    /// (Wildcard routes and the routes of a live session go to actors on this node, which do not lose them.)
    /// </summary>
    private void RetryRegistrations()
    {
        if (_pendingSubAcks is not { Count: > 0 })
        {
            Timers.Cancel(RegistrationRetry.Instance);
            return;
        }

        var now = Environment.TickCount64;
        foreach (var pending in _pendingSubAcks.Values)
        {
            if (now - pending.SinceMs < (long)RegistrationRetryEvery.TotalMilliseconds)
            {
                continue;
            }

            foreach (var (requestId, filter) in pending.Routes)
            {
                if (_subscriptions.ContainsKey(filter))
                {
                    Register(filter, requestId);
                }
            }
        }
    }

    private void RequestRetained(string filter)
    {
        if (MqttTopic.HasWildcards(filter))
        {
            _context.RetainedIndexActor.Tell(new FindRetainedTopics(filter, filter));
        }
        else
        {
            AskRetained(filter, filter);
        }
    }

    private void HandleRetainedTopicsFound(RetainedTopicsFound found)
    {
        if (!_subscriptions.ContainsKey(found.SubscriptionFilter))
        {
            return;
        }

        foreach (var topic in found.Topics)
        {
            AskRetained(topic, found.SubscriptionFilter);
        }
    }

    /// <summary>Asks a topic's entity for its retained message, remembered until it answers.</summary>
    private void AskRetained(string topic, string filter)
    {
        (Stored.RetainedAsked ??= new())[(topic, filter)] = Environment.TickCount64;
        _context.TopicRegion.Tell(new Routing.RequestRetained(topic, _clientId, filter, RouteNode, RouteIncarnation));
        if (!Timers.IsTimerActive(RetainedRetry.Instance))
        {
            Timers.StartPeriodicTimer(RetainedRetry.Instance, RetainedRetry.Instance, RetainedRetryEvery);
        }
    }

    private void RetainedAnswered(RetainedRequestAnswered answered)
    {
        if (_stored?.RetainedAsked is { } asked && asked.Remove((answered.Topic, answered.Filter)) && asked.Count == 0)
        {
            _stored.RetainedAsked = null; // most sessions ask once, at their first SUBSCRIBE: nothing is kept after
            Timers.Cancel(RetainedRetry.Instance);
        }
    }

    /// <summary>
    /// Asks again for the retained messages whose requests may have been lost with a node that left: a request goes to
    /// wherever the topic's shard lives, and one sent to a node that died before it was removed is lost with it (a
    /// wildcard subscription's SUBACK does not wait for the topic entities, so the retained messages of the dead
    /// node's topics would be missing). Once that node's shards can be reached (<see cref="RouteRetry"/>), the
    /// requests sent before then and still unanswered go again, once per departure; without a departure nothing is
    /// asked twice (a retained message goes once per subscription), and a request unanswered for
    /// <see cref="RetainedAskForgetMs"/> is forgotten.
    /// </summary>
    private void RetryRetained()
    {
        var asked = _stored?.RetainedAsked;
        if (asked is null || asked.Count == 0)
        {
            Timers.Cancel(RetainedRetry.Instance);
            return;
        }

        var nodes = _context.Nodes;
        var now = Environment.TickCount64;
        var cutoff = RouteRetry.Cutoff(nodes.LastLeftAtMs, (long)nodes.ShardsMovedAfter.TotalMilliseconds, now, ref Stored.RetainedAskedForLeftAtMs);
        List<(string Topic, string Filter)>? again = null;
        List<(string Topic, string Filter)>? forget = null;
        foreach (var (key, askedAt) in asked)
        {
            if (cutoff != 0 && askedAt < cutoff && _subscriptions.ContainsKey(key.Filter))
            {
                (again ??= new()).Add(key);
            }
            else if (now - askedAt > RetainedAskForgetMs)
            {
                (forget ??= new()).Add(key);
            }
        }

        foreach (var key in forget ?? [])
        {
            asked.Remove(key);
        }

        if (again is not null)
        {
            _log.Info("Session {ClientId}: asking again for {Count} retained message(s) asked for before a node left", _clientId, again.Count);
            foreach (var (topic, filter) in again)
            {
                AskRetained(topic, filter);
            }
        }

        if (asked.Count == 0)
        {
            Stored.RetainedAsked = null;
            Timers.Cancel(RetainedRetry.Instance);
        }
    }

    private void HandleUnsubscribe(SessionUnsubscribe unsubscribe)
    {
        if (!unsubscribe.Connection.Equals(_connection))
        {
            return;
        }

        var codes = ImmutableArray.CreateBuilder<MqttReasonCode>(unsubscribe.Packet.TopicFilters.Length);
        foreach (var filter in unsubscribe.Packet.TopicFilters)
        {
            if (_subscriptions.ContainsKey(filter))
            {
                Store(new SubscriptionRemoved(filter));
                Unregister(filter);
                UnindexRoute(filter);
                HandBackShared(filter, store: true);
                codes.Add(MqttReasonCode.Success);
            }
            else
            {
                codes.Add(MqttReasonCode.NoSubscriptionExisted);
            }
        }

        // The session's own table stops deliveries at once [MQTT-3.10.4-2]; the routes are removed behind it.
        var packet = new MqttUnsubAckPacket { PacketId = unsubscribe.Packet.PacketId, ReasonCodes = codes.MoveToImmutable() };
        AfterWrites(() => _connection?.Tell(new SendPacket(packet)));
    }

    /// <summary>
    /// Creates the route of a filter: its topic entity for an exact topic, the wildcard index otherwise. True when the
    /// request went through the topic region (to whichever node holds the topic), where it can be lost with a node.
    /// </summary>
    private bool Register(string filter, long requestId, bool renew = false)
    {
        var group = MqttTopic.TryParseShared(filter, out var g, out var inner) ? g : null;
        var topicFilter = group is null ? filter : inner;
        var key = new SubscriberKey(_clientId, group, RouteNode, RouteIncarnation);
        if (MqttTopic.HasWildcards(topicFilter))
        {
            _context.WildcardIndexActor.Tell(new RegisterWildcard(topicFilter, key, requestId, renew));
            return false;
        }

        if (_isLive && !_follows && group is null)
        {
            // Held by this node's session host, which asks again itself; the topic entity stores one route per node (SessionHost).
            _context.Nodes.SelfHost.Tell(new AddLocalRoute(topicFilter, _clientId, _incarnation, requestId));
            return false;
        }

        _context.TopicRegion.Tell(new SubscribeTopic(topicFilter, _clientId, group, requestId, RouteNode, RouteIncarnation));
        return true;
    }

    private void Unregister(string filter)
    {
        var group = MqttTopic.TryParseShared(filter, out var g, out var inner) ? g : null;
        var topicFilter = group is null ? filter : inner;
        if (MqttTopic.HasWildcards(topicFilter))
        {
            _context.WildcardIndexActor.Tell(new UnregisterWildcard(topicFilter, new SubscriberKey(_clientId, group, RouteNode, RouteIncarnation)));
        }
        else if (_isLive && !_follows && group is null)
        {
            _context.Nodes.SelfHost.Tell(new RemoveLocalRoute(topicFilter, _clientId, _incarnation));
        }
        else
        {
            _context.TopicRegion.Tell(new UnsubscribeTopic(topicFilter, _clientId, group, RouteNode, RouteIncarnation));
        }
    }

    /// <summary>
    /// Leaving a shared subscription: messages of it that this client has not completed go to another member
    /// (queued ones, and in-flight ones not yet at PUBREL; a PUBREL'd QoS 2 message has reached this client).
    /// </summary>
    private void HandBackShared(string filter, bool store)
    {
        if (!MqttTopic.TryParseShared(filter, out var group, out var inner))
        {
            return;
        }

        var handBack = new List<QueuedMessage>();
        foreach (var m in _queue.Items)
        {
            if (m.SharedFilter == filter)
            {
                handBack.Add(m);
            }
        }

        foreach (var e in _inflight.Entries)
        {
            if (e.Message.SharedFilter == filter && !e.Released)
            {
                handBack.Add(e.Message);
            }
        }

        if (handBack.Count == 0)
        {
            return;
        }

        foreach (var m in handBack)
        {
            _context.TopicRegion.Tell(new RedeliverShared(m.Message, group, inner, _clientId));
        }

        if (store)
        {
            Store(new SharedMessagesHandedBack(filter));
        }
    }

    private static readonly TimeSpan RegistrationRetryEvery = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan RetainedRetryEvery = TimeSpan.FromSeconds(1);
    private const long RetainedAskForgetMs = 60_000;

    private sealed class RetainedRetry
    {
        public static readonly RetainedRetry Instance = new();
    }

    private sealed class RegistrationRetry
    {
        public static readonly RegistrationRetry Instance = new();
    }

    private sealed class PendingSubAck(ushort packetId, IActorRef connection)
    {
        public ushort PacketId { get; } = packetId;

        public IActorRef Connection { get; } = connection;

        public HashSet<long> Registrations { get; } = new();

        /// <summary>The route requests among <see cref="Registrations"/> and their filters, asked again while unanswered.</summary>
        public Dictionary<long, string> Routes { get; } = new();

        public long SinceMs { get; } = Environment.TickCount64;

        public List<string> RetainedFilters { get; } = new();

        public ImmutableArray<MqttReasonCode> Codes { get; set; } = ImmutableArray<MqttReasonCode>.Empty;
    }
}
