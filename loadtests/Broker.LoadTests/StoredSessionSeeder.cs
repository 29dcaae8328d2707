using System.Collections.Immutable;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Broker.Configuration;
using Broker.Persistence;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.LoadTests;

/// <summary>
/// Writes many stored persistent sessions straight into a stopped broker's storage, as the broker itself stores
/// them: for each client the journal events a CONNECT (session expiry &gt; 0), one SUBSCRIBE (QoS 1) and a
/// DISCONNECT journal — <see cref="SessionOpened"/>, <see cref="SubscriptionAdded"/>, <see cref="SessionDetached"/>
/// — written through the Akka.Persistence.Sql journal with the broker's serializer; the subscriber in the topic
/// entity's journal for an exact filter; and the session's rows in the <see cref="SessionIndex"/> (its deadline, its
/// wildcard route). Creating 100,000 sessions through MQTT would take minutes of journal round trips; this takes
/// seconds, and the broker then reads them like any it wrote.
/// </summary>
public static class StoredSessionSeeder
{
    private const int BatchSessions = 1000;

    /// <param name="filterOf">The one subscription of session <c>i</c>.</param>
    public static async Task SeedAsync(BrokerOptions options, int from, int count, Func<int, string> clientIdOf, Func<int, string> filterOf,
        uint expirySeconds, CancellationToken ct = default)
    {
        await StorageSetup.VerifyAsync(options, ct);
        var index = new SessionIndex(options);
        await index.EnsureCreatedAsync(ct);
        if (count <= 0)
        {
            return;
        }

        var config = ConfigurationFactory.ParseString(StorageSetup.Hocon(options) + """

            akka.loglevel = WARNING
            akka.actor.serializers.broker = "Broker.Persistence.Serialization.BrokerSerializer, Broker.Actors"
            akka.actor.serialization-bindings { "Broker.Persistence.Serialization.IBrokerSerializable, Broker.Actors" = broker }
            """).WithFallback(Akka.Persistence.Sql.SqlPersistence.DefaultConfiguration);
        using var system = ActorSystem.Create("seeder", config);
        var journal = Akka.Persistence.Persistence.Instance.Apply(system).JournalFor(null);
        var writer = Guid.NewGuid().ToString();
        var detachedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var subscription = new SubscriptionOptions(MqttQoS.AtLeastOnce, false, false, MqttRetainHandling.SendAtSubscribe, 0);
        for (var start = from; start < from + count; start += BatchSessions)
        {
            var end = Math.Min(from + count, start + BatchSessions);
            var writes = new List<IPersistentEnvelope>();
            var rows = new List<SessionIndexChange>();
            for (var i = start; i < end; i++)
            {
                var clientId = clientIdOf(i);
                var filter = filterOf(i);
                var sessionId = "session-" + clientId;
                writes.Add(new AtomicWrite(ImmutableList.Create<IPersistentRepresentation>(
                    new Persistent(new SessionOpened(expirySeconds, null), 1, sessionId, "", false, null, writer),
                    new Persistent(new SubscriptionAdded(filter, subscription), 2, sessionId, "", false, null, writer),
                    new Persistent(new SessionDetached(detachedAt), 3, sessionId, "", false, null, writer))));
                var inner = MqttTopic.TryParseShared(filter, out _, out var f) ? f : filter;
                if (MqttTopic.HasWildcards(inner))
                {
                    rows.Add(SessionIndexChange.AddRoute(clientId, filter));
                }
                else
                {
                    // One subscriber per exact topic here: the topic entity's first event.
                    writes.Add(new AtomicWrite(new Persistent(new TopicSubscriberAdded(clientId, null), 1, "topic-" + inner, "", false, null, writer)));
                }

                if (expirySeconds != uint.MaxValue)
                {
                    rows.Add(SessionIndexChange.SetDeadline(clientId, detachedAt + (expirySeconds * 1000L)));
                }
            }

            await WriteAsync(system, journal, writes);
            await index.ApplyAsync(rows, ct);
        }

        await system.Terminate();
    }

    private static async Task WriteAsync(ActorSystem system, IActorRef journal, List<IPersistentEnvelope> writes)
    {
        var expected = writes.Sum(w => ((AtomicWrite)w).Payload is IImmutableList<IPersistentRepresentation> p ? p.Count : 1);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = system.ActorOf(Props.Create(() => new WriteListener(expected, done)));
        journal.Tell(new WriteMessages(writes, listener, 1));
        await done.Task.WaitAsync(TimeSpan.FromMinutes(2));
        system.Stop(listener);
    }

    private sealed class WriteListener : ReceiveActor
    {
        public WriteListener(int expected, TaskCompletionSource done)
        {
            var left = expected;
            Receive<WriteMessageSuccess>(_ =>
            {
                if (--left == 0)
                {
                    done.TrySetResult();
                }
            });
            Receive<WriteMessageFailure>(f => done.TrySetException(f.Cause));
            Receive<WriteMessageRejected>(r => done.TrySetException(r.Cause));
            Receive<WriteMessagesFailed>(f => done.TrySetException(f.Cause));
            Receive<WriteMessagesSuccessful>(_ => { });
        }
    }
}
