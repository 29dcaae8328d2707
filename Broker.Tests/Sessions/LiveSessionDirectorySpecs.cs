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

        Assert.Equal([session], directory.OwnerEnded(oldGuard));
        Assert.Empty(directory.OwnerEnded(oldGuard));

        // The session claimed its client id from the guard's next incarnation.
        Assert.True(directory.SetOwner(session, newGuard, out var released));
        Assert.Null(released); // the old guard was already forgotten when it stopped
        Assert.Equal([session], directory.OwnerEnded(newGuard));

        // Claimed again while the previous guard is still known: that one is released.
        Assert.True(directory.SetOwner(session, oldGuard, out _));
        Assert.True(directory.SetOwner(session, newGuard, out released));
        Assert.Equal(oldGuard, released);
        Assert.Empty(directory.OwnerEnded(oldGuard));

        Assert.True(directory.Remove(session, out var key, out var ownerReleased));
        Assert.Equal(newGuard, key.Owner);
        Assert.True(ownerReleased);
        Assert.False(directory.SetOwner(session, oldGuard, out _)); // ended: nothing to guard
    }

    [Fact]
    public void A_registry_owns_many_sessions_is_released_with_the_last_and_names_them_all_when_it_stops()
    {
        var directory = new LiveSessionDirectory();
        var registry = NewRef("registry");
        var a = NewRef("a");
        var b = NewRef("b");
        var c = NewRef("c");
        directory.Add(a, "ca", 1, registry, Gauge());
        directory.Add(b, "cb", 2, registry, Gauge());
        directory.Add(c, "cc", 3, registry, Gauge());

        Assert.True(directory.Remove(a, out _, out var released));
        Assert.False(released); // b and c still hold it

        Assert.Equal(new[] { b, c }.OrderBy(r => r.Path.Name), directory.OwnerEnded(registry).OrderBy(r => r.Path.Name));
        Assert.Empty(directory.OwnerEnded(registry));

        // Both claim their ids from the registry's next incarnation; it is released with the last of them.
        var next = NewRef("next");
        Assert.True(directory.SetOwner(b, next, out _));
        Assert.True(directory.SetOwner(c, next, out _));
        Assert.True(directory.Remove(b, out _, out released));
        Assert.False(released);
        Assert.True(directory.Remove(c, out _, out released));
        Assert.True(released);
    }

    public void Dispose() => _system.Dispose();
}
