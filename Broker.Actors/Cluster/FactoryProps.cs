using Akka.Actor;

namespace Broker.Cluster;

/// <summary>
/// Props that create their actor by calling a factory, for actors created per client, session or topic. Akka's
/// <c>Props.Create(() =&gt; new T(...))</c> builds an expression tree at every call, reads the constructor's arguments
/// back out of it, and creates the actor by reflection (constructor binding included): tens of microseconds per actor,
/// paid three times per connecting client.
/// </summary>
public static class FactoryProps
{
    public static Props Of<TActor>(Func<TActor> factory) where TActor : ActorBase =>
        Props.CreateBy(new Producer<TActor>(factory), typeof(TActor));

    private sealed class Producer<TActor>(Func<TActor> factory) : IIndirectActorProducer where TActor : ActorBase
    {
        public Type ActorType => typeof(TActor);

        public ActorBase Produce() => factory();

        public void Release(ActorBase actor)
        {
        }
    }
}
