using Akka.Actor;
using Akka.Actor.Internal;

namespace Broker.Cluster;

/// <summary>
/// An actor's stash created on the first <see cref="Stash"/>. Akka gives every actor that implements
/// <see cref="IWithUnboundedStash"/> its stash (an object and a linked list) when the actor is created, unless the actor
/// has one already; the actors there is one of per client set this in their constructor, since most of them never stash
/// (a connection stashes only what arrives while its session attaches). Used on the actor's thread only.
/// </summary>
public sealed class LazyStash(IActorContext context) : IStash
{
    private IStash? _stash;

    private IStash Created => _stash ??= new UnboundedStashImpl(context);

    public void Stash() => Created.Stash();

    public void Unstash() => _stash?.Unstash();

    /// <summary>Gives everything back to the mailbox, and lets go of the emptied stash (most actors stash once, at start).</summary>
    public void UnstashAll()
    {
        _stash?.UnstashAll();
        _stash = null;
    }

    public void UnstashAll(Func<Envelope, bool> predicate)
    {
        _stash?.UnstashAll(predicate);
        if (_stash is { IsEmpty: true })
        {
            _stash = null;
        }
    }

    public IEnumerable<Envelope> ClearStash() => _stash?.ClearStash() ?? [];

    public void Prepend(IEnumerable<Envelope> envelopes) => Created.Prepend(envelopes);

    public int Count => _stash?.Count ?? 0;

    public bool IsEmpty => _stash?.IsEmpty ?? true;

    public bool NonEmpty => !IsEmpty;

    public bool IsFull => _stash?.IsFull ?? false;

    public int Capacity => _stash?.Capacity ?? Created.Capacity;
}
