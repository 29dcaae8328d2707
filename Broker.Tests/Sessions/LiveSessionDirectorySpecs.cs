using Akka.Actor;
using Broker.Sessions;

namespace Broker.Tests.Sessions;

/// <summary>The session host's book of live sessions and their guards (a pure type), with real actor references.</summary>
public sealed class LiveSessionDirectorySpecs : IDisposable
{
    private readonly ActorSystem _system = ActorSystem.Create("live-directory-specs");

    private IActorRef NewRef(string name) => _system.ActorOf(Props.Empty, name);

    private static LiveQueueGauge Gauge() => new(100, 1_000_000);

    [Fact]
    public void A_session_is_found_by_client_id_and_incarnation_and_as_the_latest_of_its_client_id_until_it_ends()
    {
        var directory = new LiveSessionDirectory();
        var guard = NewRef("guard");
        var first = NewRef("first");
        var second = NewRef("second");
        directory.Add(first, "c1", 1, guard, Gauge());
        directory.Add(second, "c1", 2, guard, Gauge()); // taken over: the same guard delegates again

        Assert.True(directory.TryGet("c1", 1, out var one));
        Assert.Equal(first, one.Session);
        Assert.True(directory.TryGetLatest("c1", out var latest));
        Assert.Equal(second, latest);

        // The first ends: the guard stays watched for the second, which stays the latest.
        Assert.True(directory.Remove(first, out var key, out var released));
        Assert.Equal(("c1", 1L, guard), key);
        Assert.False(released);
        Assert.False(directory.TryGet("c1", 1, out _));
        Assert.True(directory.TryGetLatest("c1", out latest));
        Assert.Equal(second, latest);

        // The second ends: nothing is left, and the guard is released.
        Assert.True(directory.Remove(second, out _, out released));
        Assert.True(released);
        Assert.False(directory.TryGetLatest("c1", out _));
        Assert.Equal(0, directory.Count);
        Assert.False(directory.Remove(second, out _, out _));
    }

    [Fact]
    public void A_stopped_guard_names_its_session_once_and_a_new_guard_takes_its_place()
    {
        var directory = new LiveSessionDirectory();
        var oldGuard = NewRef("old-guard");
        var newGuard = NewRef("new-guard");
        var session = NewRef("session");
        directory.Add(session, "c2", 7, oldGuard, Gauge());

        Assert.Equal(session, directory.OwnerEnded(oldGuard));
        Assert.Null(directory.OwnerEnded(oldGuard));

        // The session claimed its client id from the guard's next incarnation.
        Assert.True(directory.SetOwner(session, newGuard, out var released));
        Assert.Null(released); // the old guard was already forgotten when it stopped
        Assert.Equal(session, directory.OwnerEnded(newGuard));

        // Claimed again while the previous guard is still known: that one is released.
        Assert.True(directory.SetOwner(session, oldGuard, out _));
        Assert.True(directory.SetOwner(session, newGuard, out released));
        Assert.Equal(oldGuard, released);
        Assert.Null(directory.OwnerEnded(oldGuard));

        Assert.True(directory.Remove(session, out var key, out var ownerReleased));
        Assert.Equal(newGuard, key.Owner);
        Assert.True(ownerReleased);
        Assert.False(directory.SetOwner(session, oldGuard, out _)); // ended: nothing to guard
    }

    public void Dispose() => _system.Dispose();
}
