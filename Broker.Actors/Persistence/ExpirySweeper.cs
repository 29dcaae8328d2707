using Akka.Actor;
using Akka.Event;
using Broker.Sessions;

namespace Broker.Persistence;

/// <summary>
/// One per node, named "expiry-sweeper". A passivated session has no timer running, so its expiry is found here:
/// every <see cref="Interval"/> one indexed query reads the sessions whose stored deadline falls before the next
/// sweep (plus a margin), and only those are woken through the session region. The woken session recovers from
/// its journal and decides: it ends if it is due, keeps an exact timer if it is due soon, or corrects its deadline
/// and passivates again (a deadline is never later than the real one, see <see cref="SessionIndex"/>).
/// <code>
///   every 2 s ─► SELECT client_id … WHERE expires_at_ms &lt;= now + 5 s ─► WakeSession(id) ─► session region
/// </code>
/// Every node sweeps; a session woken twice answers twice, nothing more.
/// </summary>
public sealed class ExpirySweeper : ReceiveActor, IWithTimers
{
    public const string Name = "expiry-sweeper";
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    /// <summary>Sessions due within this much are woken now, so that their own timer ends them on time.</summary>
    public static readonly TimeSpan Lookahead = TimeSpan.FromSeconds(5);

    private const int MaxPerSweep = 2000;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private bool _running;

    public ExpirySweeper(SessionIndex index, IActorRef sessionRegion)
    {
        Receive<Sweep>(_ =>
        {
            if (_running)
            {
                return;
            }

            _running = true;
            var until = DateTimeOffset.UtcNow.Add(Lookahead).ToUnixTimeMilliseconds();
            index.DueSessionsAsync(until, MaxPerSweep).PipeTo(Self, success: ids => new Due(ids, null), failure: e => new Due([], e));
        });
        Receive<Due>(due =>
        {
            _running = false;
            if (due.Error is not null)
            {
                _log.Warning("Could not read which sessions are due to expire ({0}); trying again in {1} s",
                    due.Error.GetBaseException().Message, Interval.TotalSeconds);
                return;
            }

            foreach (var id in due.Ids)
            {
                sessionRegion.Tell(new WakeSession(id));
            }

            if (due.Ids.Count > 0)
            {
                _log.Debug("Woke {0} sessions due to expire", due.Ids.Count);
            }
        });
        Receive<SessionWoken>(_ => { });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(SessionIndex index, IActorRef sessionRegion) =>
        Akka.Actor.Props.Create(() => new ExpirySweeper(index, sessionRegion));

    protected override void PreStart() => Timers.StartPeriodicTimer(Sweep.Instance, Sweep.Instance, TimeSpan.Zero, Interval);

    private sealed class Sweep
    {
        public static readonly Sweep Instance = new();
    }

    private sealed record Due(IReadOnlyList<string> Ids, Exception? Error);
}
