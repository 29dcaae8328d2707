using Akka.Actor;
using Broker.Transport;

namespace Broker.Tests.Transport;

/// <summary>
/// Connection actors are created under a set of parents taken in turn (<see cref="ConnectionParents"/>), attached
/// from whatever thread accepts the connection. Real actor system (a plain local one: the attaching is the same).
/// </summary>
public sealed class ConnectionParentsSpecs : IAsyncLifetime
{
    private readonly ActorSystem _system = ActorSystem.Create("parents");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _system.Terminate();

    private sealed class Echo : ReceiveActor
    {
        public Echo() => ReceiveAny(m => Sender.Tell(m));
    }

    private static async Task Ready(ConnectionParents parents)
    {
        for (var i = 0; i < 400 && !parents.Ready; i++)
        {
            await Task.Delay(25);
        }

        Assert.True(parents.Ready, "the parents did not start within 10 s");
    }

    [Fact]
    public async Task Actors_made_from_many_threads_at_once_spread_over_the_parents_and_answer()
    {
        var parents = new ConnectionParents();
        parents.Start(_system);
        await Ready(parents);

        var made = new IActorRef[4 * ConnectionParents.Count];
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = t; i < made.Length; i += 8)
            {
                made[i] = parents.Create(_system, Props.Create<Echo>());
            }
        })));

        var underParents = made.Select(a => a.Path.Parent.Name).ToList();
        Assert.All(underParents, name => Assert.StartsWith("connections-", name));
        Assert.Equal(ConnectionParents.Count, underParents.Distinct().Count()); // taken in turn: every parent used
        var answers = await Task.WhenAll(made.Select((a, i) => a.Ask<int>(i, TimeSpan.FromSeconds(5))));
        Assert.Equal(Enumerable.Range(0, made.Length), answers);
    }

    [Fact]
    public async Task Before_the_parents_are_up_an_actor_is_made_under_the_user_guardian()
    {
        var parents = new ConnectionParents();

        var actor = parents.Create(_system, Props.Create<Echo>());

        Assert.Equal("user", actor.Path.Parent.Name);
        Assert.Equal("hi", await actor.Ask<string>("hi", TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_parent_that_stops_stops_its_connection_actors()
    {
        var parents = new ConnectionParents();
        parents.Start(_system);
        await Ready(parents);
        var actor = parents.Create(_system, Props.Create<Echo>());
        var parent = await _system.ActorSelection(actor.Path.Parent).ResolveOne(TimeSpan.FromSeconds(5));
        var ended = actor.WatchAsync();

        Assert.Equal(1, await actor.Ask<int>(1, TimeSpan.FromSeconds(5)));
        Assert.True(await parent.GracefulStop(TimeSpan.FromSeconds(5)));
        Assert.True(await ended.WaitAsync(TimeSpan.FromSeconds(5)));
    }
}
