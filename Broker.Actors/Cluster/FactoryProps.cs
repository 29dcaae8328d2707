using Akka.Actor;

namespace Broker.Cluster;

/// <summary>
/// Props that create their actor by calling a factory, for actors created per client, session or topic. Akka's
/// <c>Props.Create(() =&gt; new T(...))</c> builds an expression tree at every call, reads the constructor's arguments
/// back out of it, and creates the actor by reflection (constructor binding included): tens of microseconds per actor,
/// paid three times per connecting client. With a <see cref="Deploy"/> (mailbox, dispatcher) given, the props share that
/// one instead of copying it: <c>WithMailbox</c> and <c>WithDispatcher</c> each copy the props and their deploy, and
/// the actor keeps its props, so each actor kept a deploy of its own (72 bytes).
/// </summary>
public static class FactoryProps
{
    /// <summary>On the lean mailbox (<see cref="LeanMailbox"/>).</summary>
    public static readonly Deploy Lean = new Deploy().WithMailbox(LeanMailbox.ConfigPath);

    /// <summary>On the lean mailbox, run on the channel's event loop (Transport.EventLoopDispatcher).</summary>
    public static readonly Deploy LeanOnLoop = Lean.WithDispatcher(Transport.EventLoopDispatcherConfigurator.ConfigPath);

    public static Props Of<TActor>(Func<TActor> factory) where TActor : ActorBase =>
        Props.CreateBy(new Producer<TActor>(factory), typeof(TActor));

    /// <summary>
    /// Props kept by every actor of a client: the arguments in one producer object with a static
    /// <paramref name="create"/> (no closure and delegate per actor), on a shared <paramref name="deploy"/>.
    /// </summary>
    public static Props Of<TActor, TState>(TState state, Func<TState, TActor> create, Deploy deploy) where TActor : ActorBase =>
        new SharedDeployProps(Props.CreateBy(new StateProducer<TActor, TState>(state, create)), deploy);

    private sealed class SharedDeployProps : Props
    {
        public SharedDeployProps(Props props, Deploy deploy) : base(props)
        {
            Deploy = deploy;
        }

        protected override Props Copy() => new SharedDeployProps(this, Deploy);
    }

    private sealed class StateProducer<TActor, TState>(TState state, Func<TState, TActor> create) : IIndirectActorProducer
        where TActor : ActorBase
    {
        public Type ActorType => typeof(TActor);

        public ActorBase Produce() => create(state);

        public void Release(ActorBase actor)
        {
        }
    }

    private sealed class Producer<TActor>(Func<TActor> factory) : IIndirectActorProducer where TActor : ActorBase
    {
        public Type ActorType => typeof(TActor);

        public ActorBase Produce() => factory();

        public void Release(ActorBase actor)
        {
        }
    }
}
