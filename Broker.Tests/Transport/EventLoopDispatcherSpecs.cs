using Akka.Actor;
using Akka.Configuration;
using Broker.Cluster;
using Broker.Transport;
using DotNetty.Common.Concurrency;
using DotNetty.Transport.Channels;

namespace Broker.Tests.Transport;

/// <summary>
/// The dispatcher of connection actors (<see cref="EventLoopDispatcher"/>): an actor bound to a DotNetty event loop
/// handles its messages on that loop's thread, an unbound one and one whose loop has shut down on the thread pool.
/// Real actor system, real event loop.
/// </summary>
public sealed class EventLoopDispatcherSpecs : IAsyncLifetime
{
    private const string Hocon = """
        broker.lean-mailbox.mailbox-type = "Broker.Cluster.LeanMailbox, Broker.Actors"
        broker.event-loop-dispatcher {
          type = "Broker.Transport.EventLoopDispatcherConfigurator, Broker.Actors"
          throughput = 30
        }
        """;

    private readonly ActorSystem _system = ActorSystem.Create("loops", ConfigurationFactory.ParseString(Hocon));
    private readonly MultithreadEventLoopGroup _loops = new(1);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _system.Terminate();
        await _loops.ShutdownGracefullyAsync(TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_bound_actor_handles_every_message_on_its_loop_and_in_order()
    {
        var actor = await Started(_loops.GetNext());
        for (var i = 0; i < 100; i++)
        {
            actor.Tell(i);
        }

        var seen = await actor.Ask<Seen>(Report.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal(Enumerable.Range(0, 100), seen.Numbers);
        Assert.All(seen.OnLoop, Assert.True);
    }

    [Fact]
    public async Task An_unbound_actor_and_one_whose_loop_shut_down_run_on_the_thread_pool()
    {
        var unbound = await Started(loop: null);
        unbound.Tell(1);
        var seen = await unbound.Ask<Seen>(Report.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal([1], seen.Numbers);
        Assert.True(seen.OnPool.All(p => p));

        var loop = new MultithreadEventLoopGroup(1);
        var bound = await Started(loop.GetNext());
        bound.Tell(1);
        Assert.True((await bound.Ask<Seen>(Report.Instance, TimeSpan.FromSeconds(5))).OnLoop.Single());
        await loop.ShutdownGracefullyAsync(TimeSpan.Zero, TimeSpan.FromSeconds(1));
        bound.Tell(2);
        seen = await bound.Ask<Seen>(Report.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal([1, 2], seen.Numbers);
        Assert.True(seen.OnPool[1]);
    }

    [Fact]
    public void The_configured_throughput_holds()
    {
        Assert.Equal(30, _system.Dispatchers.Lookup(EventLoopDispatcherConfigurator.ConfigPath).Throughput);
    }

    /// <summary>
    /// The actor's first run (its constructor binds it) is on the pool, and it takes whatever reaches the mailbox while
    /// it lasts (up to the dispatcher's throughput); every run after it is on the loop. A bound actor is started once a
    /// message of it was handled on its loop.
    /// </summary>
    private async Task<IActorRef> Started(IEventExecutor? loop)
    {
        var actor = _system.ActorOf(Props(loop));
        await actor.Ask<Seen>(Report.Instance, TimeSpan.FromSeconds(5));
        for (var tries = 0; loop is not null && !await actor.Ask<bool>(OnLoop.Instance, TimeSpan.FromSeconds(5)); tries++)
        {
            Assert.True(tries < 100, "the actor never ran on its loop");
        }

        return actor;
    }

    private static Props Props(IEventExecutor? loop) =>
        Akka.Actor.Props.Create(() => new Recorder(loop))
            .WithMailbox(LeanMailbox.ConfigPath)
            .WithDispatcher(EventLoopDispatcherConfigurator.ConfigPath);

    private sealed class Report
    {
        public static readonly Report Instance = new();
    }

    private sealed class OnLoop
    {
        public static readonly OnLoop Instance = new();
    }

    private sealed record Seen(List<int> Numbers, List<bool> OnLoop, List<bool> OnPool);

    private sealed class Recorder : UntypedActor
    {
        private readonly IEventExecutor? _loop;
        private readonly Seen _seen = new([], [], []);

        public Recorder(IEventExecutor? loop)
        {
            _loop = loop;
            if (loop is not null)
            {
                EventLoopDispatcher.Bind(Context, loop);
            }
        }

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case int n:
                    _seen.Numbers.Add(n);
                    _seen.OnLoop.Add(_loop?.InEventLoop == true);
                    _seen.OnPool.Add(Thread.CurrentThread.IsThreadPoolThread);
                    break;
                case OnLoop:
                    Sender.Tell(_loop?.InEventLoop == true);
                    break;
                case Report:
                    Sender.Tell(new Seen([.. _seen.Numbers], [.. _seen.OnLoop], [.. _seen.OnPool]));
                    break;
            }
        }
    }
}
