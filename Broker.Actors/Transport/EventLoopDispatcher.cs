using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Broker.Cluster;
using DotNetty.Common.Concurrency;
using IRunnable = Akka.Dispatch.IRunnable;

namespace Broker.Transport;

/// <summary>
/// Runs a connection actor on its channel's DotNetty event loop, the thread that reads and writes its socket, instead of
/// on the .NET thread pool. A decoded packet is then handed to the actor on the thread that decoded it (queued behind
/// the read, no other thread woken), and what the actor writes goes to the channel in place (no task queued to the
/// loop and no loop woken for it). Each of the two was a thread hand-off per message, and on a machine whose cores are
/// busy each hand-off to a sleeping thread is a chance to wait for the OS to run it: under load these two had the
/// largest tails of all the hops of a message (measured hop by hop, docs/benchmarks.md "Tail latency hop by hop").
/// <para>
/// An actor binds itself to its loop in its constructor (<see cref="EventLoopDispatcher.Bind"/>, which marks its mailbox);
/// its first run (creating it) and any run of a mailbox without a loop, or whose loop is shutting down, are on the
/// thread pool like Akka's default dispatcher.
/// </para>
/// Configured as <see cref="ConfigPath"/> in <see cref="BrokerHocon"/>.
/// </summary>
public sealed class EventLoopDispatcherConfigurator : MessageDispatcherConfigurator
{
    public const string ConfigPath = "broker.event-loop-dispatcher";
    private readonly EventLoopDispatcher _dispatcher;

    public EventLoopDispatcherConfigurator(Config config, IDispatcherPrerequisites prerequisites) : base(config, prerequisites)
    {
        _dispatcher = new EventLoopDispatcher(this);
    }

    public override MessageDispatcher Dispatcher() => _dispatcher;
}

/// <summary>See <see cref="EventLoopDispatcherConfigurator"/>.</summary>
public sealed class EventLoopDispatcher : MessageDispatcher
{
    private static readonly Action<object> RunMailbox = static state => ((IRunnable)state).Run();
    private static readonly WaitCallback RunOnPool = static state => ((IRunnable)state!).Run();

    public EventLoopDispatcher(MessageDispatcherConfigurator configurator) : base(configurator)
    {
        // Akka's base constructor leaves the default (100) whatever the configuration says; its own dispatchers set it.
        Throughput = configurator.Config.GetInt("throughput", DefaultThroughput);
    }

    /// <summary>From an actor's constructor: its mailbox runs on <paramref name="loop"/> from now on.</summary>
    public static void Bind(IActorContext context, IEventExecutor loop)
    {
        if (context is ActorCell { Mailbox.MessageQueue: LeanDequeMessageQueue queue })
        {
            queue.Loop = loop;
        }
    }

    protected override void ExecuteTask(IRunnable run)
    {
        if (run is Mailbox { MessageQueue: LeanDequeMessageQueue { Loop: IEventExecutor loop } } && !loop.IsShuttingDown)
        {
            try
            {
                loop.Execute(RunMailbox, run);
                return;
            }
            catch (DotNetty.Common.Concurrency.RejectedExecutionException)
            {
                // The loop began shutting down meanwhile: the pool runs it.
            }
        }

        if (run is IThreadPoolWorkItem item)
        {
            ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false); // an Akka mailbox is one: no allocation
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(RunOnPool, run);
        }
    }

    protected override void Shutdown()
    {
    }
}
