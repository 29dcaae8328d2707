using System.Collections.Concurrent;
using Akka.Actor;

namespace Broker.Sessions;

/// <summary>
/// The connection actors of this node and their clocks, for two jobs that need every connection:
/// <list type="bullet">
/// <item>A graceful stop tells each of them (v5: DISCONNECT 0x8B). Before, each connection subscribed to the event
/// stream, whose subscribe and unsubscribe copy the subscriber list of the class and register with one unsubscriber
/// actor that watches every subscriber: a third of the broker's CPU in a connect flood, measured
/// (docs/benchmarks.md, "Connections"). Adding and removing here is O(1) and lock-free.</item>
/// <item>One shared sweep, four times a second, instead of a timer per connection: it tells a connection that has
/// not sent CONNECT by its deadline, one whose session has not answered its attach to ask again (every 2 s) or give
/// up, and one silent for more than one and a half keep-alive periods
/// [MQTT-3.1.2-24], to check (the actor decides: a connection whose reading the broker paused is not silent).
/// An idle connection thus holds no timer and no scheduler registration.</item>
/// </list>
/// </summary>
public sealed class ConnectionSet : IDisposable
{
    public static readonly TimeSpan SweepInterval = TimeSpan.FromMilliseconds(250);
    private readonly ConcurrentDictionary<IActorRef, ConnectionClock> _connections = new();
    private readonly object _timerLock = new();
    private Timer? _sweep;

    public int Count => _connections.Count;

    /// <summary>Adds a connection that must send CONNECT within <paramref name="connectTimeout"/>; returns its clock.</summary>
    public ConnectionClock Add(IActorRef connection, TimeSpan connectTimeout)
    {
        var clock = new ConnectionClock { ConnectDeadline = Environment.TickCount64 + (long)connectTimeout.TotalMilliseconds };
        _connections[connection] = clock;
        if (_sweep is null)
        {
            lock (_timerLock)
            {
                _sweep ??= new Timer(_ => Sweep(), null, SweepInterval, SweepInterval);
            }
        }

        return clock;
    }

    public void Remove(IActorRef connection) => _connections.TryRemove(connection, out _);

    /// <summary>Tells every connection <paramref name="message"/>.</summary>
    public void TellAll(object message)
    {
        foreach (var (connection, _) in _connections)
        {
            connection.Tell(message);
        }
    }

    private void Sweep()
    {
        var now = Environment.TickCount64;
        foreach (var (connection, clock) in _connections)
        {
            if (clock.ConnectDeadline > 0 && now > clock.ConnectDeadline)
            {
                clock.ConnectDeadline = 0;
                connection.Tell(ClientConnectionActor.ConnectTimeout.Instance);
            }
            else if (Volatile.Read(ref clock.AttachDeadline) is > 0 and var attachDeadline)
            {
                // An attach the session has not answered yet: asked again every 2 s, given up at its deadline. A
                // message that crosses the answer is ignored by the actor (it is attached by then).
                if (now > attachDeadline)
                {
                    clock.AttachDeadline = 0;
                    connection.Tell(ClientConnectionActor.AttachTimeout.Instance);
                }
                else if (Volatile.Read(ref clock.AttachRetryAt) is > 0 and var retryAt && now >= retryAt)
                {
                    clock.AttachRetryAt = now + 2_000;
                    connection.Tell(ClientConnectionActor.AttachRetry.Instance);
                }
            }
            else if (clock.KeepAliveMs is > 0 and var keepAlive && now - Volatile.Read(ref clock.LastPacketTicks) > keepAlive * 3L / 2
                     && now >= clock.NextCheck)
            {
                // Asked again a quarter period later if the connection is still silent (its reading may be paused).
                clock.NextCheck = now + Math.Max(250, keepAlive / 4);
                connection.Tell(ClientConnectionActor.KeepAliveCheck.Instance);
            }
        }
    }

    public void Dispose() => _sweep?.Dispose();
}

/// <summary>What the sweep reads of one connection; written by its actor.</summary>
public sealed class ConnectionClock
{
    /// <summary>Environment.TickCount64 of the last packet read.</summary>
    public long LastPacketTicks = Environment.TickCount64;

    /// <summary>The keep-alive period granted, in milliseconds (0: none, or not connected yet).</summary>
    public volatile int KeepAliveMs;

    /// <summary>When CONNECT is due, Environment.TickCount64 (0: it came).</summary>
    public long ConnectDeadline;

    /// <summary>When an unanswered attach is given up, Environment.TickCount64 (0: none pending).</summary>
    public long AttachDeadline;

    /// <summary>When an unanswered attach is asked again, Environment.TickCount64 (0: none pending).</summary>
    public long AttachRetryAt;

    /// <summary>The sweep's own: not before this does it ask again.</summary>
    public long NextCheck;
}
