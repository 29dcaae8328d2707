using Akka.Actor;
using Akka.Event;
using Broker.Persistence;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Persistent sessions follow their client. A persistent session's entity is sharded by client id and lives where
/// sharding put it; its client may connect to any node. When it connects to another node than the entity's, the
/// entity stores the attach, then hands the session's state (its snapshot and the highest sequence number stored) to
/// that node's <see cref="SessionHost"/>, which runs the session there, beside the connection, as a live instance of
/// this class. That instance is the only writer of the session's journal while it runs; the entity keeps nothing but
/// the client id and forwards what reaches it for the client.
/// <code>
///   CONNECT (node 2) ─► registry ─► entity (node 1): attach stored ─StartLiveSession(state)─► host (node 2) ─► live session ─► connection
///   publish ─► topic entity ─► entity (node 1) ─NodeDeliver(BackIfGone)─► host (node 2) ─► live session: stored, confirmed, sent
///   client leaves ─► live session ─ReturnWanted─► entity ─ReturnSession─► live session: every write stored ─SessionReturned(state)─► entity
///   CONNECT (node 3) ─► entity: asks it back the same way, takes the old connection over (0x8E), hands it to node 3
/// </code>
/// <list type="bullet">
/// <item>Between asking for the session back and getting it, the entity stashes everything; whatever it forwarded
/// before asking reached the live session first, so it is in the state that comes back, in order.</item>
/// <item>The live session ends any other way (a failed write, its node gone), or does not hand the session back within
/// 20 s of being asked: the entity recovers the session from the journal, which holds everything that was
/// confirmed; what waited is handled after.</item>
/// <item>The entity stops (its node failed or left): the live session stops once every write is stored, and its
/// connection attaches again, to the entity's next incarnation, which recovers from the journal.</item>
/// <item>The journal's key (persistence id, sequence number) fences a writer that is late: its write fails.</item>
/// </list>
/// </summary>
public sealed partial class SessionEntity
{
    private static readonly TimeSpan ReturnCheckInterval = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan ReturnGiveUpAfter = TimeSpan.FromSeconds(10);

    private readonly bool _follows; // a persistent session beside its connection, handed over by its entity
    private readonly bool _startPresent; // following: Session Present of the attach its entity stored
    private bool _started; // following: its connection was answered
    private DetachSession? _leaving; // following: how its client left (the entity carries it out)
    private long _returnAskedAt; // following: when its entity asked for it back (Environment.TickCount64), 0 if not
    private Away? _away; // entity: the session runs beside its client's connection on another node

    public static Props FollowingProps(string clientId, Cluster.BrokerContext context, long incarnation, IActorRef owner, byte[] state, bool present) =>
        Cluster.FactoryProps.Of((clientId, context, incarnation, owner, state, present),
            static s => new SessionEntity(s.clientId, s.context, s.incarnation, s.owner, null, s.state, s.present), Cluster.FactoryProps.Lean);

    /// <summary>
    /// Entity: an attach was stored; true when the session then runs beside the connection instead of here: it is
    /// persistent, the connection is on another node, and nothing is under way that the state handed over would miss.
    /// </summary>
    private bool MayFollow(IActorRef connection) =>
        !_isLive && SessionLifecycle.FollowsClient(_context.Options.Sessions.PersistentSessionsFollowClient, _persistent, _journaled,
            !Locality.IsLocal(connection), Work);

    /// <summary>What is under way in this session (<see cref="MoveFacts"/>).</summary>
    private MoveFacts Work => new(_journalLink?.Owed ?? 0, _ending, _fetching is not null, _awaitingHeld?.Count ?? 0,
        _pendingSubAcks?.Count ?? 0, InboundRoutingCount, _inFlow?.PendingCount ?? 0, _wakeRegistrations?.Count ?? 0,
        _attachRecordPending, _admissionState?.HeldCount ?? 0);

    /// <summary>Entity: hands the session to the host of <paramref name="attach"/>'s node and keeps only the client id.</summary>
    private void MoveOut(AttachSession attach, bool present)
    {
        var state = StateToHandOn();
        var incarnation = Random.Shared.NextInt64(1, long.MaxValue);
        var host = _context.Nodes.HostAt(attach.Connection.Path.Address);
        _log.Info("Session {ClientId} runs beside its connection on {Node} ({Queued} queued messages)", _clientId,
            attach.Connection.Path.Address, QueuedCount);
        ForgetState();
        _away = new Away(attach.Connection, incarnation, host); // the connection stays watched: its node may fail
        host.Tell(new StartLiveSession(attach, incarnation, state, present));
    }

    /// <summary>
    /// Entity: drops the session's state from memory (the live session holds it now). The journal child stops: the
    /// live session writes from the sequence number handed over.
    /// </summary>
    private void ForgetState()
    {
        Timers.CancelAll();
        DisarmPassivation();
        _journalLink?.Release();
        _journalLink = null;
        _connection = null;
        _subscriptions = NoSubscriptions;
        _outFlow = null;
        _inflightCapacity = _context.Options.Sessions.MaxInflight;
        _expirySeconds = 0;
        _detachedAtMs = 0;
        _will = null;
        _persistent = false;
        _hasState = false;
        _journaled = false;
        _stored = null;
        _seen = null;
        _admissionState = null;
        _inboundAckState = null;
        _inFlow = null;
        _order = null;
        _pendingSubAcks = null;
        _registrationToSubAck = null;
    }

    /// <summary>Entity: while the session runs elsewhere; true when <paramref name="message"/> was handled (or stashed).</summary>
    private bool HandleAway(object message)
    {
        if (_away is not { } away)
        {
            return false;
        }

        switch (message)
        {
            case SessionReturned back when back.Incarnation == away.Incarnation:
                ComeBack(away, back);
                return true;
            case DelegationEnded ended when ended.Incarnation == away.Incarnation:
                Lost(away, "its live session ended");
                return true;
            case Terminated t when t.ActorRef.Equals(away.Connection):
                if (t.AddressTerminated)
                {
                    Lost(away, "the node of its connection is gone");
                }
                else
                {
                    AskBack(away); // its live session hands it back, or the deadline says it cannot
                }

                return true;
            case ReturnDeadline when away.Returning:
                Lost(away, "its live session did not hand it back in time");
                return true;
            case ReturnWanted wanted when wanted.Incarnation == away.Incarnation:
                AskBack(away);
                return true;
            case AttachSession attach when attach.Connection.Equals(away.Connection):
                return true; // a repeated attach of the connection it runs beside
            case AttachSession or ClaimLiveSession:
                AskBack(away); // another connection: the session comes back first, then the attach is handled here
                Stash.Stash();
                return true;
            case Deliver deliver when !away.Returning:
                away.Host.Tell(ToLiveSession(deliver, away.Incarnation, backIfGone: true));
                return true;
            case Operations.GetSessionInfo { AtEntity: false } info when !away.Returning:
                away.Host.Forward(info);
                return true;
            case SessionHandOff or HandOffDeadline:
                Context.Stop(Self); // its shard moves: the live session ends with its connection (OwnerStopped)
                return true;
            case SessionIndexWritten or JournalRecovered or ReceiveTimeout or Operations.GetSessionInfo:
                return false; // late answers of the attach's writes, or a question this entity answers as it is
            case JournalDone:
                return true; // none is due (nothing was owed when the session moved), and its journal child has stopped
            default:
                if (away.Returning)
                {
                    Stash.Stash(); // after the session is back, in order
                    return true;
                }

                return false;
        }
    }

    private void AskBack(Away away)
    {
        if (!away.Returning)
        {
            away.Returning = true;
            away.Host.Tell(new ReturnSession(_clientId, away.Incarnation));

            // Its node may be stopping or cut off, its answer lost: past the live session's own limit, the journal decides.
            Timers.StartSingleTimer(ReturnDeadline.Instance, ReturnDeadline.Instance, ReturnGiveUpAfter + ReturnGiveUpAfter);
        }
    }

    /// <summary>Entity: the session is back, every write of it stored; carry on from its state.</summary>
    private void ComeBack(Away away, SessionReturned back)
    {
        Timers.Cancel(ReturnDeadline.Instance);
        _away = null;
        Context.Unwatch(away.Connection);
        if (back.Connection is { } connection)
        {
            // Still attached (it was asked back for a takeover): the stashed attach takes it over.
            _connection = connection;
            Context.Watch(connection);
        }
        else if (back.Leaving is { } leaving)
        {
            _connection = leaving.Connection; // carried out once the state is restored (OnRecovered)
            _returnedLeaving = leaving;
        }

        _log.Info("Session {ClientId} is back from {Node}", _clientId, away.Connection.Path.Address);
        _handedOver = true;
        RestoreKept(back.State); // unstashes what waited once restored
    }

    private bool _handedOver; // started from a state handed over (routes unchanged): nothing to announce again

    private DetachSession? _returnedLeaving;

    /// <summary>After a returned state is restored: how the client left, carried out as if it had left here.</summary>
    private void CarryOutReturnedLeaving()
    {
        if (_returnedLeaving is { } leaving)
        {
            _returnedLeaving = null;
            HandleDetach(leaving);
        }
    }

    /// <summary>Entity: the live session ended without handing the session back; the journal holds what counts.</summary>
    private void Lost(Away away, string why)
    {
        _log.Warning("Session {ClientId}: {Why}; recovering it from storage", _clientId, why);
        Timers.Cancel(ReturnDeadline.Instance);
        Context.Unwatch(away.Connection);
        _away = null;
        _journal.Start(recover: true); // what waits is stashed until recovered, then handled in order
        Become(Behaviour.Recovering);
    }

    /// <summary>Following: the messages only a persistent session beside its connection handles; false for any other.</summary>
    private bool HandleFollowing(object message)
    {
        if (!_follows)
        {
            return false;
        }

        switch (message)
        {
            case AttachSession attach when !_started:
                StartBeside(attach);
                return true;
            case AttachSession:
                return true; // a repeated attach: answered once
            case DetachSession detach when detach.Connection.Equals(_connection):
                ClientLeft(detach);
                return true;
            case ConnectionStopped stopped when stopped.Connection.Equals(_connection):
                ClientLeft(new DetachSession(stopped.Connection, PublishWill: true, NewExpiry: null)); // as a lost connection
                return true;
            case ReturnSession:
                _returnAskedAt = Environment.TickCount64;
                ReturnWhenQuiet();
                return true;
            case ReturnCheck:
                ReturnWhenQuiet();
                return true;
            case OwnerStopped stopped when stopped.Owner.Equals(_owner):
                OwnerGone();
                return true;
            case ExpireTimer or ReceiveTimeout or WakeSession:
                return true; // its entity keeps its expiry, and this runs only while connected
            default:
                return false;
        }
    }

    /// <summary>Following: answers the connection as the entity would have after storing the attach.</summary>
    private void StartBeside(AttachSession attach)
    {
        _started = true;
        Timers.Cancel(ExpireTimer.Instance);
        Timers.Cancel(PublishWillTimer.Instance);
        _connection = attach.Connection;
        _version = attach.Info.Version;
        _inflightCapacity = Math.Max(1, Math.Min(attach.Info.ReceiveMaximum, _context.Options.Sessions.MaxInflight));
        if (_outFlow is not null)
        {
            _outFlow.Inflight.Capacity = _inflightCapacity;
        }

        RouteInboundAgainOnAttach();
        _connection.Tell(new SessionAttached(_startPresent, Beside: true));
        ResendInflight();
        Pump();
    }

    /// <summary>Following: the client left; the entity takes the session back and carries out the rest.</summary>
    private void ClientLeft(DetachSession detach)
    {
        _leaving = detach;
        _connection = null;
        if (_owner is null)
        {
            Context.Stop(Self); // its entity's next incarnation recovers the session from the journal
            return;
        }

        _owner.Tell(new ReturnWanted(_incarnation));
    }

    /// <summary>Following: asked back; once nothing is pending, the state goes to the entity and this instance stops.</summary>
    private void ReturnWhenQuiet()
    {
        if (_returnAskedAt == 0)
        {
            return;
        }

        var quiet = SessionLifecycle.QuietForReturn(Work);
        if (!quiet && Environment.TickCount64 - _returnAskedAt < ReturnGiveUpAfter.TotalMilliseconds)
        {
            Timers.StartSingleTimer(ReturnCheck.Instance, ReturnCheck.Instance, ReturnCheckInterval);
            return;
        }

        if (_owner is null)
        {
            // Nobody to hand the state to: the journal holds it. The connection is told that this instance stopped.
            _returnAskedAt = 0;
            Context.Stop(Self);
            return;
        }

        if (quiet)
        {
            _owner.Tell(new SessionReturned(_incarnation, StateToHandOn(), _connection, _leaving));
        }
        else
        {
            // Still busy after all this time: stop without handing over; the entity recovers from the journal.
            _log.Warning("Session {ClientId}: could not hand the session back with writes pending; its entity recovers it from storage", _clientId);
            _connection?.Tell(SessionTakenOver.Instance);
        }

        _connection = null; // handed on with the state: not told that this instance stops
        _returnAskedAt = 0;
        Context.Stop(Self);
    }

    /// <summary>
    /// Following: the entity stopped (its node failed or left). Once every write is stored this instance stops, and its
    /// connection, told so (PostStop), attaches again: the entity's next incarnation recovers the session from the
    /// journal, and it follows its client again. The client notices nothing.
    /// </summary>
    private void OwnerGone()
    {
        _owner = null;
        _log.Info("Session {ClientId}: its entity stopped; the connection attaches to its next incarnation once every write is stored", _clientId);
        _returnAskedAt = Environment.TickCount64;
        ReturnWhenQuiet();
    }


    private sealed class Away(IActorRef connection, long incarnation, IActorRef host)
    {
        public IActorRef Connection { get; } = connection;

        public long Incarnation { get; } = incarnation;

        public IActorRef Host { get; } = host;

        public bool Returning { get; set; }
    }

    private sealed class ReturnCheck
    {
        public static readonly ReturnCheck Instance = new();
    }

    private sealed class ReturnDeadline
    {
        public static readonly ReturnDeadline Instance = new();
    }
}
