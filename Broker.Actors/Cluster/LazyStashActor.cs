using Akka.Actor;
using Akka.Actor.Internal;
using Akka.Dispatch;

namespace Broker.Cluster;

/// <summary>
/// An actor whose stash is created on the first <see cref="IStash.Stash"/>. Akka gives every actor that implements
/// <see cref="IWithUnboundedStash"/> its stash (an object and a linked list) when the actor is created, unless the actor
/// has one already; the actors there is one of per client (and per topic) derive from this, since most of them never
/// stash (a connection stashes only what arrives while its session attaches). The actor is its own stash's face, so
/// it carries no stash object either until it stashes. Used on the actor's thread only.
/// </summary>
public abstract class LazyStashActor : UntypedActor, IWithUnboundedStash, IStash
{
    private IStash? _stash;

    /// <summary>This actor's stash (itself; the queue behind it exists while something is stashed).</summary>
    protected IStash Stash => this;

    IStash IActorStash.Stash
    {
        get => this;
        set { } // Akka sets one only where there is none
    }

    private IStash Created => _stash ??= new UnboundedStashImpl(Context);

    void IStash.Stash() => Created.Stash();

    void IStash.Unstash() => _stash?.Unstash();

    /// <summary>Gives everything back to the mailbox, and lets go of the emptied stash (most actors stash once, at start).</summary>
    void IStash.UnstashAll()
    {
        _stash?.UnstashAll();
        _stash = null;
    }

    void IStash.UnstashAll(Func<Envelope, bool> predicate)
    {
        _stash?.UnstashAll(predicate);
        if (_stash is { IsEmpty: true })
        {
            _stash = null;
        }
    }

    IEnumerable<Envelope> IStash.ClearStash() => _stash?.ClearStash() ?? [];

    void IStash.Prepend(IEnumerable<Envelope> envelopes) => Created.Prepend(envelopes);

    int IStash.Count => _stash?.Count ?? 0;

    bool IStash.IsEmpty => _stash?.IsEmpty ?? true;

    bool IStash.NonEmpty => _stash?.IsEmpty == false;

    bool IStash.IsFull => _stash?.IsFull ?? false;

    int IStash.Capacity => _stash?.Capacity ?? Created.Capacity;
}
