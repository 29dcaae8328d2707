using Akka.Actor;

namespace Broker.Routing;

/// <summary>
/// Gathers a connection's consecutive publishes to one topic into one <see cref="RoutePublishes"/>, so that a burst
/// read from one socket reaches the topic entity (often on another node) as one message instead of one each. The
/// connection adds each publish as it handles it and sends what was gathered once it has handled everything that was
/// in its mailbox (its flush message), so a publish waits at most one turn of the connection's mailbox.
/// <para>
/// Order is kept: a publish to another topic, or a retained one (the topic stores it before routing, so it travels
/// alone), first sends what was gathered. A batch is sent early at <see cref="MaxItems"/> publishes or
/// <see cref="MaxBytes"/> bytes of payload.
/// </para>
/// </summary>
public sealed class RouteBatcher
{
    internal const int MaxItems = 256;
    internal const int MaxBytes = 256 * 1024;

    private List<RoutePublish>? _items; // created with the first publish: most connections only subscribe
    private int _bytes;

    /// <summary>Nothing is gathered.</summary>
    public bool IsEmpty => _items is not { Count: > 0 };

    /// <summary>Gathers <paramref name="publish"/>, sending first or at once what cannot wait (see the class).</summary>
    public void Add(RoutePublish publish, IActorRef topicRegion)
    {
        if (publish.Message.Retain)
        {
            Send(topicRegion);
            topicRegion.Tell(publish, ActorRefs.NoSender);
            return;
        }

        if (_items is { Count: > 0 } && !string.Equals(_items[0].Message.Topic, publish.Message.Topic, StringComparison.Ordinal))
        {
            Send(topicRegion);
        }

        (_items ??= new()).Add(publish);
        _bytes += publish.Message.Payload.Length;
        if (_items.Count >= MaxItems || _bytes >= MaxBytes)
        {
            Send(topicRegion);
        }
    }

    /// <summary>Sends what was gathered: a lone publish as itself, several as one batch.</summary>
    public void Send(IActorRef topicRegion)
    {
        switch (_items?.Count ?? 0)
        {
            case 0:
                return;
            case 1:
                // No sender: the reply address travels in the message, so no sender path is serialized.
                topicRegion.Tell(_items![0], ActorRefs.NoSender);
                break;
            default:
                topicRegion.Tell(new RoutePublishes(_items![0].Message.Topic, _items.ToArray()), ActorRefs.NoSender);
                break;
        }

        _items!.Clear();
        _bytes = 0;
    }
}
