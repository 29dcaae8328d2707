using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Akka.Remote;

namespace Broker.Cluster;

/// <summary>
/// Stops a node from serving as soon as it can know that the others may have removed it, instead of when its own
/// split-brain resolver gets round to it (seconds later, or never: a removed node that downed the others instead
/// stays a one-member cluster that nobody answers). Two signals, each ending in a coordinated shutdown (listeners and
/// clients closed in its first phase, exit code 3, the supervisor starts a new process that joins again):
/// <list type="bullet">
/// <item>another member quarantined this node (<see cref="ThisActorSystemQuarantinedEvent"/>): the others removed it,
/// and no message between them will ever pass again;</item>
/// <item>this process stood still longer than the others need to down it (<see cref="PauseWatch"/>): a SIGSTOP, a
/// frozen VM, a very long GC pause. While it stood still the others may have downed it and started its sessions and
/// topics elsewhere; anything it did after waking would run beside them.</item>
/// </list>
/// One per node, at <c>/user/fence</c>.
/// </summary>
public sealed class Fence : ReceiveActor
{
    public const string Name = "fence";
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PauseWatch _pauses;
    private bool _fenced;

    public Fence(TimeSpan pauseLimit, BrokerContext context)
    {
        var self = Self;
        _pauses = new PauseWatch(pauseLimit, paused => self.Tell(new StoodStill(paused)));
        context.Pauses = _pauses;
        Receive<ThisActorSystemQuarantinedEvent>(q => Stop(
            $"{q.RemoteAddress} quarantined this node: the cluster removed it", FencedReason.Quarantined));
        Receive<StoodStill>(s => Stop(
            $"the process stood still for {s.For.TotalSeconds:F1} s, longer than the others need to down it ({pauseLimit.TotalSeconds:F1} s)",
            FencedReason.Paused));
    }

    public static Props Props(TimeSpan pauseLimit, BrokerContext context) => Akka.Actor.Props.Create(() => new Fence(pauseLimit, context));

    /// <summary>
    /// The shortest time after which the others may have downed a node that went silent: the failure detector's
    /// acceptable heartbeat pause plus the split-brain resolver's stable-after.
    /// </summary>
    public static TimeSpan PauseLimitOf(Akka.Configuration.Config config) =>
        config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause", TimeSpan.FromSeconds(3))
        + config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after", TimeSpan.FromSeconds(20));

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(ThisActorSystemQuarantinedEvent));
        _pauses.Start();
    }

    protected override void PostStop()
    {
        Context.System.EventStream.Unsubscribe(Self);
        _pauses.Dispose();
    }

    private void Stop(string why, CoordinatedShutdown.Reason reason)
    {
        if (_fenced)
        {
            return;
        }

        _fenced = true;
        _log.Error("Fencing this node: {0}; it stops serving now and leaves (exit code 3, to be restarted)", why);
        CoordinatedShutdown.Get(Context.System).Run(reason);
    }

    private sealed record StoodStill(TimeSpan For);
}

/// <summary>
/// A thread of its own that wakes every 100 ms and reports when it woke much later than asked: the whole process stood
/// still for that long (every thread stops under SIGSTOP or a frozen VM; the monotonic clock goes on).
/// <para>
/// <see cref="StoodStill"/> closes the gap between waking and the shutdown: when the process resumes, every thread
/// resumes, and an actor may handle a message (a publish read before the pause) before this thread has run. It is
/// true from the moment the process resumes: either this thread has not ticked for longer than the limit, or it has
/// and found the pause (which it records before it ticks again). Topic entities ask it before they route.
/// </para>
/// </summary>
public sealed class PauseWatch : IDisposable
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);
    private readonly TimeSpan _limit;
    private readonly Action<TimeSpan> _onPause;
    private readonly CancellationTokenSource _stop = new();
    private long _lastTick; // Stopwatch timestamp of the latest tick; 0 before the first
    private volatile bool _stoodStill;

    /// <summary>True once the process stood still longer than the limit (for good: the node is leaving).</summary>
    public bool StoodStill
    {
        get
        {
            if (_stoodStill)
            {
                return true;
            }

            var last = Volatile.Read(ref _lastTick);
            return last != 0 && Stopwatch.GetElapsedTime(last) - Tick > _limit;
        }
    }

    public PauseWatch(TimeSpan limit, Action<TimeSpan> onPause)
    {
        _limit = limit;
        _onPause = onPause;
    }

    public void Start() => new Thread(Run) { IsBackground = true, Name = "pause-watch" }.Start();

    public void Dispose() => _stop.Cancel();

    private void Run()
    {
        var clock = Stopwatch.StartNew();
        var last = clock.Elapsed;
        Volatile.Write(ref _lastTick, Stopwatch.GetTimestamp());
        while (!_stop.IsCancellationRequested)
        {
            Thread.Sleep(Tick);
            var now = clock.Elapsed;
            if (now - last - Tick > _limit)
            {
                _stoodStill = true;
                _onPause(now - last);
            }

            last = now;
            Volatile.Write(ref _lastTick, Stopwatch.GetTimestamp());
        }
    }
}

/// <summary>Why a node's coordinated shutdown ran: it fenced itself (see <see cref="Fence"/>).</summary>
public sealed class FencedReason : CoordinatedShutdown.Reason
{
    public static readonly FencedReason Quarantined = new();
    public static readonly FencedReason Paused = new();

    private FencedReason()
    {
    }

    public override int ExitCode => 3; // as a node downed by the split-brain resolver
}
