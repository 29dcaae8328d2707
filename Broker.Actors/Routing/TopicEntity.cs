using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Broker.Cluster;

namespace Broker.Routing;

/// <summary>
/// The sharded entity of one topic name (Akka.Cluster.Sharding, keyed by topic). It owns:
/// <list type="bullet">
/// <item>the exact-topic subscribers of this topic (client ids; shared-group members too),</item>
/// <item>the topic's retained message (MQTT-v5.0 3.3.1.3),</item>
/// </list>
/// and routes every PUBLISH on the topic: to its exact subscribers and to the wildcard subscribers found in this node's
/// replica of the wildcard index. All of it is event-sourced, so it survives passivation, restarts and failover.
/// Routing order is the entity's mailbox order, which keeps messages of one publisher on one topic in order.
/// </summary>
public sealed class TopicEntity : ReceivePersistentActor
{
    private readonly string _topic;
    private readonly BrokerContext _context;
    private readonly HashSet<SubscriberKey> _subscribers = new();
    private readonly DeliveryPlanner _planner = new();
    private readonly List<(string Filter, SubscriberKey Key, byte Value)> _wildcardMatches = new();
    private readonly List<DeliveryTarget> _targets = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private MqttApplicationMessage? _retained;
    private int _pendingWrites;
    private int _eventsSinceSnapshot;

    public TopicEntity(string topic, BrokerContext context)
    {
        _topic = topic;
        _context = context;
        PersistenceId = "topic-" + topic;

        Recover<TopicSubscriberAdded>(e => _subscribers.Add(new SubscriberKey(e.ClientId, e.ShareGroup)));
        Recover<TopicSubscriberRemoved>(e => _subscribers.Remove(new SubscriberKey(e.ClientId, e.ShareGroup)));
        Recover<RetainedMessageSet>(e => _retained = e.Message);
        Recover<RetainedMessageCleared>(_ => _retained = null);
        Recover<SnapshotOffer>(o =>
        {
            if (o.Snapshot is TopicSnapshot s)
            {
                _subscribers.Clear();
                _subscribers.UnionWith(s.Subscribers);
                _retained = s.Retained;
            }
        });
        Recover<RecoveryCompleted>(_ =>
        {
            if (_retained is not null)
            {
                _context.RetainedIndexActor.Tell(new RetainedTopicChanged(_topic, true));
            }
        });

        Command<RoutePublish>(HandlePublish);
        Command<SubscribeTopic>(HandleSubscribe);
        Command<UnsubscribeTopic>(HandleUnsubscribe);
        Command<RequestRetained>(HandleRequestRetained);
        Command<RedeliverShared>(HandleRedeliverShared);
        Command<WakeTopic>(_ => Sender.Tell(new TopicWoken(_topic))); // recovery re-indexed the retained message
        Command<SaveSnapshotSuccess>(s =>
        {
            DeleteMessages(s.Metadata.SequenceNr);
            DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1));
        });
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
        Command<SaveSnapshotFailure>(f => _log.Warning("Snapshot of topic {0} failed: {1}", _topic, f.Cause.Message));
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(_ => { });
    }

    public override string PersistenceId { get; }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // Logged by Akka with the event type and persistence id; counted here. The entity stops and recovers from
        // the journal on its next message; nothing that depended on this event was confirmed.
        _context.Metrics.StorageFailure();
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _context.Metrics.StorageFailure();
        base.OnRecoveryFailure(reason, message);
    }

    public static Props Props(string topic, BrokerContext context) =>
        Akka.Actor.Props.Create(() => new TopicEntity(topic, context));

    private void HandlePublish(RoutePublish publish)
    {
        var message = publish.Message;
        if (!message.Retain)
        {
            Route(publish);
            return;
        }

        // MQTT-3.3.1-5/6/7: a retained PUBLISH replaces the topic's retained message; an empty payload removes it.
        // The message itself is still delivered to current subscribers like any other.
        if (message.Payload.IsEmpty)
        {
            if (_retained is null)
            {
                Route(publish);
                return;
            }

            _retained = null;
            Store(RetainedMessageCleared.Instance, () =>
            {
                _context.RetainedIndexActor.Tell(new RetainedTopicChanged(_topic, false));
                Route(publish);
            });
            return;
        }

        var wasEmpty = _retained is null;
        _retained = message;
        Store(new RetainedMessageSet(message), () =>
        {
            if (!wasEmpty)
            {
                Route(publish);
                return;
            }

            // The topic's first retained message: every node's retained index must know the topic before the
            // publisher hears PUBACK, or a wildcard SUBSCRIBE elsewhere right after could miss it. Later publishes
            // on this topic wait (stashed) so that their order is kept.
            _context.RetainedIndexActor.Tell(new RetainedTopicChanged(_topic, true, Self, LastSequenceNr));
            BecomeStacked(() =>
            {
                Command<RetainedIndexed>(_ =>
                {
                    UnbecomeStacked();
                    Route(publish);
                    Stash.UnstashAll();
                });
                CommandAny(_ => Stash.Stash());
            });
        });
    }

    private void Route(RoutePublish publish)
    {
        _wildcardMatches.Clear();
        _targets.Clear();
        _context.Wildcards.Match(_topic, _wildcardMatches);
        _planner.Plan(_topic, _subscribers, _wildcardMatches, _targets);

        var message = publish.Message;
        var wantsAck = publish.AckTo is not null && message.QoS != Protocol.MqttQoS.AtMostOnce;
        var region = _context.SessionRegion;
        foreach (var target in _targets)
        {
            region.Tell(new Deliver(
                target.ClientId, message, target.SharedFilter, null, wantsAck ? publish.AckTo : null, publish.AckId));
        }

        publish.AckTo?.Tell(new PublishRouted(publish.AckId, wantsAck ? _targets.Count : 0));
    }

    private void HandleRedeliverShared(RedeliverShared r)
    {
        _wildcardMatches.Clear();
        _context.Wildcards.Match(_topic, _wildcardMatches);
        var member = _planner.PickSharedMember(_topic, r.Group, r.Filter, _subscribers, _wildcardMatches, r.ExcludedClientId);
        if (member is null)
        {
            _log.Info("Shared group {0} on {1} has no other member; message on {2} dropped", r.Group, r.Filter, _topic);
            return;
        }

        _context.SessionRegion.Tell(new Deliver(member, r.Message, $"$share/{r.Group}/{r.Filter}", null, null, 0));
    }

    private void HandleSubscribe(SubscribeTopic s)
    {
        var key = new SubscriberKey(s.ClientId, s.ShareGroup);
        var sender = Sender;
        if (_subscribers.Contains(key))
        {
            sender.Tell(new TopicSubscribed(s.RequestId));
            return;
        }

        _subscribers.Add(key);
        Store(new TopicSubscriberAdded(s.ClientId, s.ShareGroup), () => sender.Tell(new TopicSubscribed(s.RequestId)));
    }

    private void HandleUnsubscribe(UnsubscribeTopic u)
    {
        var key = new SubscriberKey(u.ClientId, u.ShareGroup);
        if (!_subscribers.Contains(key))
        {
            return;
        }

        _subscribers.Remove(key);
        Store(new TopicSubscriberRemoved(u.ClientId, u.ShareGroup));
    }

    private void HandleRequestRetained(RequestRetained r)
    {
        if (_retained is null)
        {
            return;
        }

        if (_retained.IsExpired(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()))
        {
            // MQTT-v5.0 3.3.2.3.3: an expired retained message is no longer delivered.
            _retained = null;
            Store(RetainedMessageCleared.Instance, () => _context.RetainedIndexActor.Tell(new RetainedTopicChanged(_topic, false)));
            return;
        }

        _context.SessionRegion.Tell(new Deliver(r.ClientId, _retained, null, r.Filter, null, 0));
    }

    /// <summary>
    /// State has already changed in memory; journal the event and run <paramref name="then"/> (routing, replies) once it
    /// is stored. Callbacks run in event order, so routing order follows the mailbox. A failed write stops the entity,
    /// which recovers the journaled state, and nothing was confirmed for the event that failed.
    /// </summary>
    private void Store(ITopicEvent e, Action? then = null)
    {
        _pendingWrites++;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        PersistAsync(e, _ =>
        {
            _context.Metrics.PersistLatency.RecordSince(started);
            _pendingWrites--;
            then?.Invoke();
            if (++_eventsSinceSnapshot >= _context.Options.Storage.SnapshotEvery && _pendingWrites == 0)
            {
                _eventsSinceSnapshot = 0;
                SaveSnapshot(new TopicSnapshot(_subscribers.ToList(), _retained));
            }
        });
    }
}
