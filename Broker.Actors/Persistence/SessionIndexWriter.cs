using Akka.Actor;
using Akka.Event;

namespace Broker.Persistence;

/// <summary>Write these changes to the <see cref="SessionIndex"/>; with a <see cref="ReplyTo"/>, answered by <see cref="SessionIndexWritten"/>.</summary>
public sealed record WriteSessionIndex(IReadOnlyList<SessionIndexChange> Changes, IActorRef? ReplyTo = null, long RequestId = 0)
    : INoSerializationVerificationNeeded
{
    public WriteSessionIndex(SessionIndexChange change, IActorRef? replyTo = null, long requestId = 0)
        : this([change], replyTo, requestId)
    {
    }
}

/// <summary>The changes of request <see cref="RequestId"/> are stored (or, after repeated failures, given up: logged).</summary>
public sealed record SessionIndexWritten(long RequestId) : INoSerializationVerificationNeeded;

/// <summary>
/// One per node, named "session-index": writes <see cref="SessionIndex"/> changes in order, batching whatever arrives
/// while a write runs into the next transaction (a connect storm of new persistent sessions costs one transaction per
/// batch, not one per session). A failed batch is retried; after <see cref="MaxAttempts"/> it is logged and answered,
/// since the rows only spare a start-up its waking: the journal still holds every session.
/// </summary>
public sealed class SessionIndexWriter : ReceiveActor, IWithTimers
{
    public const string Name = "session-index";
    private const int MaxAttempts = 5;
    private const int MaxBatch = 5000;
    private readonly SessionIndex _index;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private List<WriteSessionIndex> _waiting = new();
    private List<WriteSessionIndex>? _inFlight;
    private int _attempt;

    public SessionIndexWriter(SessionIndex index)
    {
        _index = index;
        Receive<WriteSessionIndex>(w =>
        {
            _waiting.Add(w);
            Flush();
        });
        Receive<Written>(_ =>
        {
            Answer();
            Flush();
        });
        Receive<Failed>(f =>
        {
            if (++_attempt < MaxAttempts)
            {
                _log.Warning("Session index write failed ({0}); retrying", f.Error.GetBaseException().Message);
                Timers.StartSingleTimer(Retry.Instance, Retry.Instance, TimeSpan.FromMilliseconds(200 * _attempt));
                return;
            }

            _log.Error(f.Error, "Session index write failed {0} times; {1} changes dropped (those sessions are found again when addressed)",
                MaxAttempts, _inFlight?.Sum(w => w.Changes.Count) ?? 0);
            Answer();
            Flush();
        });
        Receive<Retry>(_ => Write());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(SessionIndex index) => Akka.Actor.Props.Create(() => new SessionIndexWriter(index));

    private void Flush()
    {
        if (_inFlight is not null || _waiting.Count == 0)
        {
            return;
        }

        if (_waiting.Count <= MaxBatch)
        {
            _inFlight = _waiting;
            _waiting = new List<WriteSessionIndex>();
        }
        else
        {
            _inFlight = _waiting.GetRange(0, MaxBatch);
            _waiting.RemoveRange(0, MaxBatch);
        }

        _attempt = 0;
        Write();
    }

    private void Write()
    {
        var changes = new List<SessionIndexChange>();
        foreach (var w in _inFlight!)
        {
            changes.AddRange(w.Changes);
        }

        _index.ApplyAsync(changes).PipeTo(Self, success: () => Written.Instance, failure: e => new Failed(e));
    }

    private void Answer()
    {
        foreach (var w in _inFlight ?? [])
        {
            w.ReplyTo?.Tell(new SessionIndexWritten(w.RequestId));
        }

        _inFlight = null;
    }

    private sealed class Written
    {
        public static readonly Written Instance = new();
    }

    private sealed class Retry
    {
        public static readonly Retry Instance = new();
    }

    private sealed record Failed(Exception Error);
}
