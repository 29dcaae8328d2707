using Akka.Actor;
using Akka.Event;
using Broker.Cluster;
using Broker.Persistence;

namespace Broker.Routing;

/// <summary>
/// The sharded entity of one topic name (Akka.Cluster.Sharding, keyed by topic). It owns:
/// <list type="bullet">
/// <item>the exact-topic subscribers of this topic: persistent sessions and shared-group members by client id, clean
/// sessions by one route per node (their node's session host knows which of them subscribe),</item>
/// <item>the topic's retained message (MQTT-v5.0 3.3.1.3),</item>
/// <item>payloads of QoS 1/2 publishes stored once for several persistent sessions (TopicEntity.Payloads.cs),</item>
/// </list>
/// and routes every PUBLISH on the topic: to its exact subscribers and to the wildcard subscribers found in this node's
/// replica of the wildcard index. All of it is event-sourced, so it survives passivation, restarts and failover.
/// Routing order is the entity's mailbox order, which keeps messages of one publisher on one topic in order.
/// </summary>
public sealed partial class TopicEntity : LazyStashActor
{
    private readonly string _topic;
    private readonly BrokerContext _context;
    private readonly JournalLink _journal;
    private readonly HashSet<SubscriberKey> _subscribers = new();
    private readonly DeliveryPlanner _planner = new();
    private readonly List<(string Filter, SubscriberKey Key, byte Value)> _wildcardMatches = new();
    private readonly List<DeliveryTarget> _targets = new();
    private readonly DeliveryDispatch _dispatch;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private MqttApplicationMessage? _retained;
    private int _eventsSinceSnapshot;
    private long _nextIndexRequest;

    public TopicEntity(string topic, BrokerContext context)
    {
        _topic = topic;
        _context = context;
        _journal = new JournalLink(Context, context, context.TopicDirectory, "topic-", topic, context.TopicShardOf(topic));
        _dispatch = new DeliveryDispatch(context);

        // Starting: a topic with nothing stored (no exact subscriber, no retained message: most telemetry topics)
        // routes without reading the journal.
        _journal.AskStored();
    }

    // Behaviours are plain switches (UntypedActor): a ReceiveActor compiles its handlers for every new instance, and a
    // topic entity starts on the first publish to each topic (measured: most of the cost of starting one).
    protected override void OnReceive(object message)
    {
        if (message is StoredAnswer answer)
        {
            if (_journal.RecoverIfStored(answer))
            {
                Become(Recovering);
            }
            else
            {
                BecomeActive();
            }
        }
        else
        {
            Stash.Stash();
        }
    }


    public static Props Props(string topic, BrokerContext context) =>
        FactoryProps.Of((topic, context), static s => new TopicEntity(s.topic, s.context), FactoryProps.Lean);

    private void Recovering(object message)
    {
        if (message is JournalRecovered recovered)
        {
            if (recovered.Snapshot is TopicSnapshot s)
            {
                _subscribers.UnionWith(s.Subscribers);
                _retained = s.Retained;
                foreach (var p in s.Payloads)
                {
                    Apply(p);
                }
            }

            foreach (var e in recovered.Events)
            {
                Apply((ITopicEvent)e);
            }

            if (_retained is not null)
            {
                _context.RetainedIndexActor.Tell(new RetainedTopicChanged(_topic, true));
            }

            BecomeActive();
            CheckHolders();
        }
        else
        {
            _journal.StashUnlessStopped(message, Stash);
        }
    }

    private void BecomeActive()
    {
        if (!_context.RoutesSynced.IsCompleted)
        {
            // Started on a node that joined a moment ago: its wildcard replica may not hold the cluster's
            // subscriptions yet, and routing now would acknowledge publishes that reached nobody.
            Become(AwaitingRoutes);
            _log.Info("Topic {0}: started before this node's replica of the wildcard subscriptions was read; it routes once it is", _topic);
            _context.RoutesSynced.PipeTo(Self, success: () => RoutesSynced.Instance);
            return;
        }

        Become(Active);
        Stash.UnstashAll();
    }

    private void AwaitingRoutes(object message)
    {
        if (message is RoutesSynced)
        {
            BecomeActive();
        }
        else
        {
            _journal.StashUnlessStopped(message, Stash);
        }
    }

    private sealed class RoutesSynced
    {
        public static readonly RoutesSynced Instance = new();
    }

    private void Active(object message)
    {
        switch (message)
        {
            case RoutePublish publish:
                HandlePublish(publish);
                break;
            case RoutePublishes publishes:
                foreach (var publish in publishes.Items)
                {
                    Route(publish); // not retained (see RoutePublishes): nothing to store first
                }

                break;
            case SubscribeTopic subscribe:
                HandleSubscribe(subscribe);
                break;
            case UnsubscribeTopic unsubscribe:
                HandleUnsubscribe(unsubscribe);
                break;
            case RequestRetained request:
                HandleRequestRetained(request);
                break;
            case RedeliverShared redeliver:
                HandleRedeliverShared(redeliver);
                break;
            case WakeTopic:
                Sender.Tell(new TopicWoken(_topic)); // recovery re-indexed the retained message
                break;
            case HoldPayload hold:
                HandleHold(hold);
                break;
            case ReleasePayloads release:
                HandleRelease(release);
                break;
            case FetchPayloads fetch:
                HandleFetch(fetch);
                break;
            case TopicHandOff:
                // Reached only here: in every other behaviour it is stashed behind the messages that came before it.
                FlushHolderChanges(whenIdle: false);
                _journal.AfterWrites(() => Context.Stop(Self));
                break;
            case HoldsChecked checkedHolds:
                HandleHoldsChecked(checkedHolds);
                break;
            case JournalDone:
                JournalAnswered();
                break;
            case JournalRecovered:
                break; // a journal started for a topic with nothing stored finds nothing
            case Terminated t when _journal.IsJournal(t.ActorRef):
                _journal.Stopped();
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void JournalAnswered()
    {
        var stored = _journal.Answered();
        FlushHolderChanges(whenIdle: true);
        if (stored > 0 && ((_eventsSinceSnapshot += stored) >= _context.Options.Storage.SnapshotEvery || PayloadRowsToDrop())
            && _journal.PendingWrites == 0 && _holderChanges.Count == 0)
        {
            _eventsSinceSnapshot = 0;
            _payloadRowsSinceSnapshot = false;
            _journal.Snapshot(new TopicSnapshot(_subscribers.ToList(), _retained, SnapshotPayloads()));
        }
    }

    private void Apply(ITopicEvent e)
    {
        switch (e)
        {
            case TopicSubscriberAdded a:
                _subscribers.Add(a.Key);
                break;
            case TopicSubscriberRemoved r:
                _subscribers.Remove(r.Key);
                break;
            case RetainedMessageSet set:
                _retained = set.Message;
                break;
            case RetainedMessageCleared:
                _retained = null;
                break;
            case SharedPayloadStored p:
                Apply(p);
                break;
            case SharedPayloadHoldersChanged c:
                Apply(c);
                break;
        }
    }

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
            _context.RetainedIndexActor.Tell(new RetainedTopicChanged(_topic, true, Self, ++_nextIndexRequest));
            BecomeStacked(m =>
            {
                switch (m)
                {
                    case RetainedIndexed:
                        UnbecomeStacked();
                        Route(publish);
                        Stash.UnstashAll();
                        break;
                    default:
                        _journal.StashUnlessStopped(m, Stash);
                        break;
                }
            });
        });
    }

    private void Route(RoutePublish publish)
    {
        if (_context.Fenced)
        {
            // This process stood still long enough for the others to have downed it, or it was downed: they may have
            // started this topic elsewhere, and a publish routed here must not go beside the newer ones (the node is
            // fencing itself; the publisher gets no acknowledgement, so nothing it was promised is lost).
            return;
        }

        _wildcardMatches.Clear();
        _targets.Clear();
        _context.Wildcards.Match(_topic, _wildcardMatches);
        _planner.Plan(_topic, _subscribers, _wildcardMatches, _targets, publish.Origin);

        var message = publish.Message;
        // QoS 1/2: the publisher is acknowledged once every session has stored the message. QoS 0 with a reply address
        // is a back-pressure probe: every session confirms once it has handed the message on (see
        // ClientConnectionActor.Backpressure).
        var wantsAck = publish.AckTo is not null;
        var ackTo = wantsAck ? publish.AckTo : null;
        var payloadId = _targets.Count >= 2 && message.QoS != Protocol.MqttQoS.AtMostOnce
            && message.Payload.Length >= _context.Options.Storage.SharedPayloadMinBytes
            ? Offer(message)
            : 0;
        _dispatch.Send(_targets, message, ackTo, publish.AckId, publish.Origin, payloadId);
        DropRoutesOfLeftNodes();
        if (publish.AckTo is { } routedTo)
        {
            _context.Links.Tell(routedTo, new PublishRouted(publish.AckId, wantsAck ? _targets.Count : 0));
        }
    }

    /// <summary>Exact subscribers whose live session was on a node that has left: their sessions ended with it.</summary>
    private void DropRoutesOfLeftNodes()
    {
        if (_dispatch.LeftNodes.Count == 0)
        {
            return;
        }

        foreach (var key in _subscribers.Where(k => k.Node is not null && _dispatch.LeftNodes.Contains(k.Node)).ToList())
        {
            _subscribers.Remove(key);
            Store(new TopicSubscriberRemoved(key.ClientId, key.ShareGroup, key.Node, key.Incarnation));
        }

        _dispatch.LeftNodes.Clear();
    }

    private void HandleRedeliverShared(RedeliverShared r)
    {
        _wildcardMatches.Clear();
        _context.Wildcards.Match(_topic, _wildcardMatches);
        var member = _planner.PickSharedMember(_topic, r.Group, r.Filter, _subscribers, _wildcardMatches, r.ExcludedClientId);
        if (member is not { } chosen)
        {
            _log.Info("Shared group {0} on {1} has no other member; message on {2} dropped", r.Group, r.Filter, _topic);
            return;
        }

        _targets.Clear();
        _targets.Add(new DeliveryTarget(chosen, $"$share/{r.Group}/{r.Filter}"));
        _dispatch.Send(_targets, r.Message, null, 0, null, 0);
    }

    private void HandleSubscribe(SubscribeTopic s)
    {
        var key = s.Key;
        var sender = Sender;
        if (_subscribers.Contains(key))
        {
            sender.Tell(new TopicSubscribed(s.RequestId), ActorRefs.NoSender);
            return;
        }

        _subscribers.Add(key);
        Store(new TopicSubscriberAdded(s.ClientId, s.ShareGroup, s.Node, s.Incarnation), () => sender.Tell(new TopicSubscribed(s.RequestId), ActorRefs.NoSender));
    }

    private void HandleUnsubscribe(UnsubscribeTopic u)
    {
        var key = u.Key;
        if (!_subscribers.Contains(key))
        {
            return;
        }

        _subscribers.Remove(key);
        Store(new TopicSubscriberRemoved(u.ClientId, u.ShareGroup, u.Node, u.Incarnation));
    }

    private void HandleRequestRetained(RequestRetained r)
    {
        Sender.Tell(new RetainedRequestAnswered(r.Topic, r.Filter), ActorRefs.NoSender);
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

        _targets.Clear();
        _targets.Add(new DeliveryTarget(r.ClientId, null, r.Node, r.Incarnation));
        _dispatch.Send(_targets, _retained, null, 0, null, 0, retainedForFilter: r.Filter);
    }

    /// <summary>
    /// State has already changed in memory; journal the event and run <paramref name="then"/> (routing, replies) once it
    /// is stored. Callbacks run in event order, so routing order follows the mailbox. A failed write stops the entity,
    /// which recovers the journaled state, and nothing was confirmed for the event that failed. A topic left with
    /// nothing (no subscriber, no retained message, no stored payload) deletes its journal, so that it starts again
    /// without reading it.
    /// </summary>
    private void Store(ITopicEvent e, Action? then = null)
    {
        _journal.Write(e, then, e switch
        {
            SharedPayloadStored p => p.Message.Payload.Length,
            RetainedMessageSet r => r.Message.Payload.Length,
            _ => 0,
        });
        if (_subscribers.Count == 0 && _retained is null && _payloads.Count == 0 && _holderChanges.Count == 0)
        {
            _eventsSinceSnapshot = 0;
            _journal.DeleteAll(null);
        }
    }
}
