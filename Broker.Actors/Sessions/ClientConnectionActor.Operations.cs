using Akka.Actor;
using Akka.Event;
using Broker.Channel;
using Broker.Cluster;
using Broker.Operations;
using Broker.Protocol;

namespace Broker.Sessions;

/// <summary>What operators see of a connection: the registry entry, connect/disconnect counters, administrative kick.</summary>
public sealed partial class ClientConnectionActor
{
    private DisconnectReason? _endReason { get => _occasional?.EndReason ?? null; set { if (_occasional is not null || value != null) Occasional.EndReason = value; } }
    private bool _attachedOnce;

    /// <summary>CONNACK success was sent: count it and tell this node's registry.</summary>
    private void AnnounceConnected()
    {
        if (_attachedOnce)
        {
            return;
        }

        _attachedOnce = true;
        _context.Metrics.Connected();
        _context.Clients.Online(
            new ClientInfo(_clientId, _context.Clients.NodeAddress, _remote, VersionName(_version), DateTimeOffset.UtcNow, _connect!.CleanStart,
                _grantedExpiry, _keepAliveSeconds),
            Self);
    }

    /// <summary>Remembers the first reason this connection is ending for; counted when the actor stops.</summary>
    private void EndingBecause(DisconnectReason reason) => _endReason ??= reason;

    private void CountDisconnect()
    {
        if (_attachedOnce)
        {
            _context.Metrics.Disconnected(_endReason ?? DisconnectReason.ConnectionLost);
            _context.Clients.Offline(_clientId, Self);
        }
    }

    private void HandleAdministrativeDisconnect()
    {
        _log.Info("Client {ClientId} ({Address}) disconnected by an operator (management API)", _clientId, _remote);
        if (_session is null)
        {
            EndingBecause(DisconnectReason.Administrative);
            CloseNow();
            return;
        }

        Disconnect(CloseRules.OperatorClose);
    }
}
