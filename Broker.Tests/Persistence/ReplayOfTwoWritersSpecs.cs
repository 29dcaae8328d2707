using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Persistence;
using Broker.Configuration;
using Broker.Persistence;

namespace Broker.Tests.Persistence;

/// <summary>
/// The journal stamps every event with its own writer id, one per node. A persistent session that followed its client
/// to another node and came back, or one taken over while its node stood still (SIGSTOP, cut off) and written once
/// more by that node when it woke, leaves events of one writer stored after another's. The table's key (persistence
/// id, sequence number) lets one row per number in, so what is stored is one line of events, and each may have been
/// confirmed to a client (a PUBACK follows its write). Replaying must give back every stored event, as the node's
/// batched reader does; Akka.Persistence's default replay filter ("repair-by-discard-old") drops the events of the
/// writer that appeared first once another has written. On real SQLite, each node an actor system with the storage
/// configuration the broker runs with.
/// </summary>
public sealed class ReplayOfTwoWritersSpecs : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("replay-writers-").FullName;

    [Fact]
    public async Task Events_of_an_earlier_writer_stored_after_a_later_one_are_replayed()
    {
        // The journal stamps each event with its own writer id, one per node.
        using var stoodStill = Node("stood-still");
        using var startedMeanwhile = Node("started-meanwhile");
        const string id = "session-two-writers";

        // 1 and 2 by the node that stands still, 3 by the one that took over meanwhile, 4 and 5 by the first again.
        foreach (var (seq, writer) in new[] { (1L, stoodStill), (2L, stoodStill), (3L, startedMeanwhile), (4L, stoodStill), (5L, stoodStill) })
        {
            var inbox = Inbox.Create(writer);
            Journal(writer).Tell(new WriteMessages([new AtomicWrite(new Persistent($"event {seq}", seq, id))], inbox.Receiver, 1));
            Assert.IsType<WriteMessageSuccess>(await NextAsync(inbox, m => m is WriteMessageSuccess or WriteMessageFailure or WriteMessageRejected));
        }

        // A third node recovers the session.
        using var recovering = Node("recovering");
        var replay = Inbox.Create(recovering);
        Journal(recovering).Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, id, replay.Receiver));
        var replayed = new List<string>();
        while (await NextAsync(replay, m => m is ReplayedMessage or RecoverySuccess or ReplayMessagesFailure) is ReplayedMessage message)
        {
            replayed.Add((string)message.Persistent.Payload);
        }

        Assert.Equal(["event 1", "event 2", "event 3", "event 4", "event 5"], replayed);
    }

    private static IActorRef Journal(ActorSystem system) => Akka.Persistence.Persistence.Instance.Apply(system).JournalFor(null);

    /// <summary>An actor system with the node's storage configuration on this spec's SQLite file.</summary>
    private ActorSystem Node(string name)
    {
        var options = new BrokerOptions { Node = new NodeOptions { DataDir = _dir } };
        var config = ConfigurationFactory.ParseString(StorageSetup.Hocon(options)).WithFallback(Akka.Persistence.Sql.SqlPersistence.DefaultConfiguration);
        var setup = ActorSystemSetup.Empty.And(BootstrapSetup.Create().WithConfig(config));
        if (StorageSetup.DataOptions(options) is { } data)
        {
            setup = setup.And(data);
        }

        return ActorSystem.Create(name, setup);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The next message the journal sent to <paramref name="inbox"/> that is <paramref name="wanted"/>.</summary>
    private static async Task<object> NextAsync(Inbox inbox, Func<object, bool> wanted)
    {
        while (true)
        {
            var message = await inbox.ReceiveAsync(TimeSpan.FromSeconds(30));
            if (wanted(message))
            {
                return message;
            }
        }
    }
}
