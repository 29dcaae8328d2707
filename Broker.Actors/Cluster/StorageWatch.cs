using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Broker.Operations;
using Npgsql;

namespace Broker.Cluster;

/// <summary>
/// Moves a node's sessions and topics away from it when it alone cannot reach the database. A member cut off from
/// PostgreSQL stays a member (its cluster links are fine), so it keeps its shards, and every write of the entities it
/// hosts fails: publishes to their subscribers are refused cluster-wide for as long as the cut lasts. Every second this
/// actor asks the database for <c>SELECT 1</c> over a connection of its own (given up after 3 s); when no probe has
/// succeeded for <c>Storage:LeaveAfter</c> seconds it asks the other Up members whether they reach it
/// (<see cref="StorageLeaveRule"/>). If one of them does, this node leaves the cluster (coordinated shutdown: its
/// listeners and clients close, its shards are handed over to the members that can write, exit code 3, its supervisor
/// starts a new process). If none does, the database is down for everyone: leaving would only move the shards from
/// one node that cannot write to another, or end the cluster, so it stays and asks again. One per node on PostgreSQL
/// in a cluster, at <c>/user/storage-watch</c>, which also answers the other nodes' questions.
/// </summary>
public sealed class StorageWatch : ReceiveActor, IWithTimers
{
    public const string Name = "storage-watch";
    private static readonly TimeSpan ProbeEvery = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(2);
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _connectionString;
    private readonly StorageLeaveRule _rule;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private NpgsqlConnection? _connection;
    private bool _probing;
    private List<StorageReachability>? _answers; // while asking the others
    private int _asked;
    private long _lastStayLogMs = -10_000;
    private bool _leaving;

    public StorageWatch(string storageConnectionString, TimeSpan leaveAfter)
    {
        _connectionString = new NpgsqlConnectionStringBuilder(storageConnectionString)
        {
            ApplicationName = "broker storage watch",
            Pooling = false,
            Timeout = 2,
            CommandTimeout = 2,
            CancellationTimeout = -1, // a timed-out probe breaks its connection at once, no wait for a cancel request
        }.ToString();
        _rule = new StorageLeaveRule(leaveAfter, 0);
        Receive<Tick>(_ => OnTick());
        Receive<Probed>(OnProbed);
        Receive<AskStorageReachable>(_ => Sender.Tell(new StorageReachability(_cluster.SelfAddress.ToString(), _rule.Reachable(Now),
            (long)_rule.ReachableFor(Now).TotalMilliseconds)));
        Receive<StorageReachability>(a =>
        {
            _answers?.Add(a);
            if (_answers is not null && (_rule.Steady(TimeSpan.FromMilliseconds(a.ReachableForMs)) || _answers.Count >= _asked))
            {
                Decide(); // one member that writes steadily is enough; or everyone answered
            }
        });
        Receive<AnswersDue>(_ => Decide());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string storageConnectionString, TimeSpan leaveAfter) =>
        Akka.Actor.Props.Create(() => new StorageWatch(storageConnectionString, leaveAfter));

    private long Now => _clock.ElapsedMilliseconds;

    protected override void PreStart() => Timers.StartPeriodicTimer("probe", Tick.Instance, ProbeEvery);

    protected override void PostStop() => _connection?.Dispose();

    private void OnTick()
    {
        if (!_probing)
        {
            _probing = true;
            var connection = _connection;
            _connection = null;
            ProbeAsync(connection, _connectionString).PipeTo(Self);
        }

        if (_answers is null && !_leaving && _rule.ShouldAsk(Now) && _cluster.SelfMember.Status == MemberStatus.Up)
        {
            var others = _cluster.State.Members.Where(m => m.Status == MemberStatus.Up && !m.Address.Equals(_cluster.SelfAddress)).ToList();
            if (others.Count == 0)
            {
                LogStay("no other member to take this node's sessions");
                return;
            }

            _answers = new List<StorageReachability>();
            _asked = others.Count;
            foreach (var member in others)
            {
                Context.ActorSelection(new RootActorPath(member.Address) / "user" / Name).Tell(AskStorageReachable.Instance);
            }

            Timers.StartSingleTimer("answers", AnswersDue.Instance, AnswerWithin);
        }
    }

    private void OnProbed(Probed probed)
    {
        _probing = false;
        _connection = probed.Connection;
        var wasReachable = _rule.LatestOk;
        _rule.Probed(probed.Error is null, Now);
        if (probed.Error is not null && wasReachable)
        {
            _log.Warning("Storage unreachable from this node ({0}); it leaves the cluster if that lasts {1:F0} s while another member reaches it",
                probed.Error, _rule.LeaveAfter.TotalSeconds);
        }
        else if (probed.Error is null && !wasReachable)
        {
            _log.Info("Storage reachable again from this node");
        }
    }

    private void Decide()
    {
        var answers = _answers ?? [];
        _answers = null;
        Timers.Cancel("answers");
        if (_leaving || !_rule.ShouldAsk(Now))
        {
            return; // the database answered again meanwhile
        }

        var reaching = answers.Where(a => _rule.Steady(TimeSpan.FromMilliseconds(a.ReachableForMs))).Select(a => a.Node).ToList();
        if (_rule.ShouldLeave(answers.Select(a => TimeSpan.FromMilliseconds(a.ReachableForMs))))
        {
            _leaving = true;
            _log.Error("Storage unreachable from this node for {0:F1} s while {1} reach it: leaving the cluster so that this node's " +
                "sessions and topics move to members that can write (exit code 3, to be restarted)",
                _rule.UnreachableFor(Now).TotalSeconds, string.Join(", ", reaching));
            CoordinatedShutdown.Get(Context.System).Run(StorageLostReason.Instance);
            return;
        }

        LogStay(answers.Any(a => a.Reachable)
            ? $"{answers.Count} of {_asked} other member(s) answered; none has reached it for {_rule.LeaveAfter.TotalSeconds:F0} s yet (the database is coming back)"
            : $"{answers.Count} of {_asked} other member(s) answered, none reaches it: the database is down for the cluster");
    }

    private void LogStay(string why)
    {
        if (Now - _lastStayLogMs >= 10_000)
        {
            _lastStayLogMs = Now;
            _log.Warning("Storage unreachable from this node for {0:F1} s; staying in the cluster: {1}", _rule.UnreachableFor(Now).TotalSeconds, why);
        }
    }

    /// <summary>SELECT 1 over the watch's own connection (opened when there is none), bounded by <see cref="ProbeTimeout"/>.</summary>
    private static async Task<Probed> ProbeAsync(NpgsqlConnection? connection, string connectionString)
    {
        connection ??= new NpgsqlConnection(connectionString);
        try
        {
            using var cts = new CancellationTokenSource(ProbeTimeout);
            var work = Task.Run(async () =>
            {
                if (connection.State != System.Data.ConnectionState.Open)
                {
                    await connection.OpenAsync(cts.Token).ConfigureAwait(false);
                }

                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync(cts.Token).ConfigureAwait(false);
            });
            await work.WaitAsync(ProbeTimeout + TimeSpan.FromMilliseconds(500)).ConfigureAwait(false);
            return new Probed(connection, null);
        }
        catch (Exception e)
        {
            _ = connection.DisposeAsync().AsTask().ContinueWith(_ => { }, TaskScheduler.Default);
            return new Probed(null, e is TimeoutException or OperationCanceledException ? $"no answer within {ProbeTimeout.TotalSeconds:F0} s" : e.GetBaseException().Message);
        }
    }

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed class AnswersDue
    {
        public static readonly AnswersDue Instance = new();
    }

    private sealed record Probed(NpgsqlConnection? Connection, string? Error);
}

/// <summary>
/// When a node that cannot reach the database leaves the cluster (see <see cref="StorageWatch"/>). Times are
/// milliseconds on a monotonic clock; probes run about once a second, so a node whose latest success is older than
/// <see cref="FreshFor"/> has failed or hung probes behind it. It counts as reaching the database from
/// <c>startMs</c> on.
/// <code>
///   probe ok ──► reachable ──── no probe succeeds ───► unreachable since the last success
///                    ▲                                        │ for LeaveAfter or longer
///                    └──────────── probe ok ──────────────────┤
///                                                             ▼
///                                    ask the other Up members: does the database answer you?
///                       one has for LeaveAfter without a gap ─► leave      none has ─► stay, ask again
/// </code>
/// </summary>
public sealed class StorageLeaveRule(TimeSpan leaveAfter, long startMs)
{
    /// <summary>A success older than this is stale: probes run once a second and give up after 3 s.</summary>
    public static readonly TimeSpan FreshFor = TimeSpan.FromSeconds(3);

    private long _lastSuccessMs = startMs;
    private long _reachableSinceMs = startMs; // first success of the current run of successes

    public TimeSpan LeaveAfter { get; } = leaveAfter;

    /// <summary>The latest probe that ended succeeded.</summary>
    public bool LatestOk { get; private set; } = true;

    /// <summary>The answer given to the other members: the latest probe succeeded, and recently.</summary>
    public bool Reachable(long nowMs) => LatestOk && UnreachableFor(nowMs) == TimeSpan.Zero;

    public void Probed(bool ok, long nowMs)
    {
        if (ok && !Reachable(nowMs))
        {
            _reachableSinceMs = nowMs;
        }

        LatestOk = ok;
        if (ok)
        {
            _lastSuccessMs = nowMs;
        }
    }

    /// <summary>How long no probe has succeeded (zero while the latest success is fresh).</summary>
    public TimeSpan UnreachableFor(long nowMs)
    {
        var since = TimeSpan.FromMilliseconds(nowMs - _lastSuccessMs);
        return LatestOk && since < FreshFor ? TimeSpan.Zero : since;
    }

    /// <summary>Time to ask the others: leaving is on and no probe succeeded for LeaveAfter (failed or hung).</summary>
    public bool ShouldAsk(long nowMs) => LeaveAfter > TimeSpan.Zero && UnreachableFor(nowMs) >= LeaveAfter;

    /// <summary>How long the probes have succeeded without a gap (zero while unreachable).</summary>
    public TimeSpan ReachableFor(long nowMs) => Reachable(nowMs) ? TimeSpan.FromMilliseconds(nowMs - _reachableSinceMs) : TimeSpan.Zero;

    /// <summary>
    /// A member that has reached the database for LeaveAfter without a gap: not one that just got it back at the end of
    /// an outage for everyone (the others are about to get it back too, and must not leave for that).
    /// </summary>
    public bool Steady(TimeSpan reachableFor) => reachableFor >= LeaveAfter;

    /// <summary>Leave when at least one other member reaches the database steadily: its shards can live there.</summary>
    public bool ShouldLeave(IEnumerable<TimeSpan> othersReachableFor) => othersReachableFor.Any(Steady);
}

/// <summary>Why a node's coordinated shutdown ran: it could not reach the database while other members could.</summary>
public sealed class StorageLostReason : CoordinatedShutdown.Reason
{
    public static readonly StorageLostReason Instance = new();

    private StorageLostReason()
    {
    }

    public override int ExitCode => 3; // as a node downed by the split-brain resolver: its supervisor restarts it
}

/// <summary>Asks a node's <see cref="StorageWatch"/> whether it reaches the database now.</summary>
public sealed record AskStorageReachable : IOperationsMessage
{
    public static readonly AskStorageReachable Instance = new();
}

/// <summary>
/// The answer: the answering node's address, whether its latest probe of the database succeeded, and for how long its
/// probes have succeeded without a gap.
/// </summary>
public sealed record StorageReachability(string Node, bool Reachable, long ReachableForMs) : IOperationsMessage;
