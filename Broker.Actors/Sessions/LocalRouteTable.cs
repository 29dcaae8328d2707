using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// The exact-topic subscriptions of one node's live sessions (clean sessions beside their connections), kept by the
/// node's <see cref="SessionHost"/> in memory. A topic entity knows only that this node has subscribers to its topic
/// (one route per node and topic, a <see cref="Routing.SubscriberKey"/> with no client id): it sends the node one delivery, and
/// the host hands it to every local subscriber found here. So a clean session that subscribes or leaves writes
/// nothing: the node's route is stored once, when the node's first subscriber to the topic arrives, and stays for a
/// while after its last one left (<paramref name="lingerMs"/>), so that devices reconnecting after a network outage find
/// it still there. Pure; the host feeds it the clock.
/// </summary>
/// <typeparam name="TWaiter">Who waits for a route to be stored (the host's reply address and request).</typeparam>
public sealed class LocalRouteTable<TWaiter>(long lingerMs, long ensureRetryMs)
{
    private readonly Dictionary<string, Topic> _topics = new(StringComparer.Ordinal);
    private readonly Dictionary<(string ClientId, long Incarnation), List<string>> _bySession = new();
    private readonly Dictionary<long, string> _ensures = new(); // the request id of each route asked for, to its topic
    private long _nextEnsure;

    /// <summary>Topics that have a stored route or are waiting for one.</summary>
    public int TopicCount => _topics.Count;

    /// <summary>
    /// A live session subscribes to <paramref name="topic"/>. <see cref="AddOutcome.Routed"/>: the node's route is stored,
    /// answer now; <see cref="AddOutcome.Ensure"/>: ask the topic entity to store it under <paramref name="ensureId"/>
    /// (and answer when it has);
    /// <see cref="AddOutcome.Waiting"/>: that was asked already, the waiter is answered with the others.
    /// </summary>
    public AddOutcome Add(string topic, string clientId, long incarnation, TWaiter waiter, long nowMs, out long ensureId)
    {
        ensureId = 0;
        var session = (clientId, incarnation);
        if (!_topics.TryGetValue(topic, out var t))
        {
            t = new Topic();
            _topics[topic] = t;
        }

        if (!t.Subscribers.Contains(session))
        {
            t.Subscribers.Add(session);
            if (!_bySession.TryGetValue(session, out var topics))
            {
                topics = new List<string>(1);
                _bySession[session] = topics;
            }

            topics.Add(topic);
        }

        t.EmptiedAtMs = 0;
        if (t.Routed)
        {
            return AddOutcome.Routed;
        }

        (t.Waiters ??= new()).Add(waiter);
        if (t.EnsureSentAtMs != 0)
        {
            return AddOutcome.Waiting;
        }

        t.EnsureSentAtMs = Math.Max(1, nowMs);
        ensureId = NewEnsure(topic, t);
        return AddOutcome.Ensure;
    }

    /// <summary>
    /// The topic entity stored this node's route, asked for under <paramref name="ensureId"/>: every waiter is
    /// answered. Null for an answer to a request asked again since under another id.
    /// </summary>
    public List<TWaiter>? Stored(long ensureId)
    {
        if (!_ensures.Remove(ensureId, out var topic) || !_topics.TryGetValue(topic, out var t))
        {
            return null;
        }

        t.Routed = true;
        t.EnsureSentAtMs = 0;
        t.EnsureId = 0;
        var waiters = t.Waiters;
        t.Waiters = null;
        if (t.Subscribers.Count == 0)
        {
            t.EmptiedAtMs = 1; // everyone left while it was stored: linger from the next sweep's clock
        }

        return waiters;
    }

    /// <summary>A live session leaves <paramref name="topic"/> (UNSUBSCRIBE).</summary>
    public void Remove(string topic, string clientId, long incarnation, long nowMs)
    {
        var session = (clientId, incarnation);
        if (_bySession.TryGetValue(session, out var topics))
        {
            topics.Remove(topic);
            if (topics.Count == 0)
            {
                _bySession.Remove(session);
            }
        }

        RemoveSubscriber(topic, session, nowMs);
    }

    /// <summary>A live session ended: it leaves all its topics.</summary>
    public void RemoveSession(string clientId, long incarnation, long nowMs)
    {
        var session = (clientId, incarnation);
        if (!_bySession.Remove(session, out var topics))
        {
            return;
        }

        foreach (var topic in topics)
        {
            RemoveSubscriber(topic, session, nowMs);
        }
    }

    /// <summary>
    /// Adds to <paramref name="recipients"/> every local subscriber of <paramref name="topic"/> not already in it (a
    /// session whose wildcard filter matched too is named by the topic entity: it gets the message once). Returns how
    /// many were added, or -1 when this node holds no route for the topic (left over from before a restart of the host):
    /// the caller then asks the topic entity to drop it.
    /// </summary>
    public int AddSubscribers(string topic, List<NodeRecipient> recipients, int explicitCount)
    {
        if (!_topics.TryGetValue(topic, out var t))
        {
            return -1;
        }

        var added = 0;
        foreach (var s in t.Subscribers)
        {
            if (!IsAmong(s, recipients, explicitCount))
            {
                recipients.Add(new NodeRecipient(s.ClientId, s.Incarnation, null));
                added++;
            }
        }

        return added;
    }

    /// <summary>Whether a session subscribes to the topic here (for diagnostics and tests).</summary>
    public bool Subscribes(string topic, string clientId, long incarnation) =>
        _topics.TryGetValue(topic, out var t) && t.Subscribers.Contains((clientId, incarnation));

    /// <summary>
    /// Periodic: routes whose last subscriber left more than the linger ago are given up (the caller tells their topic
    /// entities); ensures unanswered for longer than the retry interval are asked again (the entity's node may have
    /// failed with the request).
    /// </summary>
    public void Sweep(long nowMs, List<string> drop, List<(string Topic, long EnsureId)> ensureAgain)
    {
        List<string>? forget = null;
        foreach (var (topic, t) in _topics)
        {
            if (t.EnsureSentAtMs != 0)
            {
                if (nowMs - t.EnsureSentAtMs >= ensureRetryMs)
                {
                    t.EnsureSentAtMs = Math.Max(1, nowMs);
                    _ensures.Remove(t.EnsureId);
                    ensureAgain.Add((topic, NewEnsure(topic, t)));
                }

                continue;
            }

            if (t.Subscribers.Count > 0)
            {
                continue;
            }

            if (t.EmptiedAtMs == 1)
            {
                t.EmptiedAtMs = Math.Max(2, nowMs);
            }
            else if (t.EmptiedAtMs != 0 && nowMs - t.EmptiedAtMs >= lingerMs)
            {
                (forget ??= []).Add(topic);
            }
        }

        if (forget is null)
        {
            return;
        }

        foreach (var topic in forget)
        {
            _topics.Remove(topic);
            drop.Add(topic);
        }
    }

    private long NewEnsure(string topic, Topic t)
    {
        t.EnsureId = ++_nextEnsure;
        _ensures[t.EnsureId] = topic;
        return t.EnsureId;
    }

    private void RemoveSubscriber(string topic, (string, long) session, long nowMs)
    {
        if (!_topics.TryGetValue(topic, out var t) || !t.Subscribers.Remove(session) || t.Subscribers.Count > 0)
        {
            return;
        }

        if (t.Routed)
        {
            t.EmptiedAtMs = Math.Max(2, nowMs);
        }
        else if (t.EnsureSentAtMs == 0)
        {
            _topics.Remove(topic);
        }

        // else: waiting for the route to be stored; once it is, it lingers like any other
    }

    /// <summary>Named already for a non-shared filter (a shared subscription is a subscription of its own: MQTT-v5.0 4.8.2).</summary>
    private static bool IsAmong((string ClientId, long Incarnation) s, List<NodeRecipient> list, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var r = list[i];
            if (r.SharedFilter is null && r.Incarnation == s.Incarnation && string.Equals(r.ClientId, s.ClientId, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    public enum AddOutcome
    {
        Routed,
        Ensure,
        Waiting,
    }

    private sealed class Topic
    {
        public HashSet<(string ClientId, long Incarnation)> Subscribers { get; } = new();

        public bool Routed { get; set; }

        /// <summary>When the route was last asked for while not yet stored; 0 when none is awaited.</summary>
        public long EnsureSentAtMs { get; set; }

        /// <summary>The id the awaited route was last asked for under.</summary>
        public long EnsureId { get; set; }

        /// <summary>When the last subscriber left a stored route (1: at the next sweep); 0 while it has subscribers.</summary>
        public long EmptiedAtMs { get; set; }

        public List<TWaiter>? Waiters { get; set; }
    }
}
