using System.Net;
using Akka.Actor;
using Akka.Event;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Security;
using Broker.Transport;

namespace Broker.Sessions;

/// <summary>
/// Authentication at CONNECT (MQTT-3.1.4-2 / MQTT-v5.0 3.1.4: the server may refuse a client that fails it).
/// An authenticator that must wait (an HTTP service) runs off this actor's thread and answers with
/// <see cref="AuthDecided"/>, and the packets a client sends behind its CONNECT wait in the stash; one that decides at
/// once (the password file, anonymous clients) is answered in the same turn. A refusal is answered at once the first time, later ones from the
/// same address after a growing, bounded delay (<see cref="AuthFailureThrottle"/>) held by a timer, not a blocked thread.
/// <code>
///   AwaitingConnect ──CONNECT──► Authenticating ──allowed──► Attaching ...
///                                      └──refused──(delay)──► CONNACK 0x04/0x05 (v5 0x86/0x87), close
/// </code>
/// </summary>
public sealed partial class ClientConnectionActor
{
    private static readonly TimeSpan AuthenticateTimeout = TimeSpan.FromSeconds(10);
    private string? _username;

    private void Authenticate(MqttConnectPacket connect)
    {
        var request = new AuthRequest(_clientId, connect.Username, connect.Password, _channel.RemoteAddress, ClientCertificateName());
        var decision = _context.Security.Authenticator.AuthenticateAsync(request, CancellationToken.None);
        if (decision.IsCompletedSuccessfully)
        {
            // Decided without waiting (the password file, anonymous clients): no round trip through the mailbox. What
            // may still wait (a refusal's delay, the will's ACL answer) waits in Authenticating as before.
            Move(Channel.ConnectionEvent.ConnectAdmitted);
            HandleAuthDecided(new AuthDecided(decision.Result, null));
            return;
        }

        Timers.StartSingleTimer(AttachTimeout.Instance, AttachTimeout.Instance, AuthenticateTimeout);
        Move(Channel.ConnectionEvent.ConnectAdmitted);
        decision.PipeTo(Self, success: r => new AuthDecided(r, null), failure: e => new AuthDecided(null, e));
    }

    private void Authenticating(object message)
    {
        switch (message)
        {
            case AuthDecided decided:
                HandleAuthDecided(decided);
                break;
            case RefuseAuth r:
                RefuseConnect(r.Refusal);
                break;
            case AttachTimeout:
                _log.Warning("Client {0} ({1}): the authenticator did not answer within {2} s; refusing", _clientId, _remote,
                    AuthenticateTimeout.TotalSeconds);
                RefuseConnect(CloseRules.AuthenticatorDidNotAnswer);
                break;
            case MqttDecodeError e:
                ProtocolViolation(e.Error.ReasonCode, e.Error.Message);
                break;
            case MqttPacket:
                StashPacket();
                break;
            default:
                CommonReceives(message);
                break;
        }
    }

    private void HandleAuthDecided(AuthDecided decided)
    {
        Timers.Cancel(AttachTimeout.Instance);
        if (decided.Result is { Outcome: AuthOutcome.Allowed } allowed)
        {
            _username = allowed.Username;
            _grants = allowed.Grants;
            if (MayPublishWill(_connect!, decided) is not { } willAllowed)
            {
                return; // asked the HTTP service about the will; this runs again with its answer
            }

            if (!willAllowed)
            {
                _context.Metrics.AclDenyPublish();
                Warn("may not publish its will to {0}; refusing", _connect!.Will!.Topic);
                RefuseConnect(CloseRules.WillNotAuthorized);
                return;
            }

            ContinueConnect();
            return;
        }

        if (decided.Error is { } error)
        {
            _log.Warning("Client {0} ({1}): the authenticator failed ({2}); refusing", _clientId, _remote, error.GetBaseException().Message);
            RefuseConnect(CloseRules.AuthenticatorFailed);
            return;
        }

        var missing = decided.Result!.Outcome == AuthOutcome.NotAuthorized;
        var refusal = new RefuseAuth(missing ? CloseRules.NotAuthorized : CloseRules.BadCredentials);
        _context.Metrics.AuthFailure();
        var delay = _context.Security.Throttle.Failed((_channel.RemoteAddress as IPEndPoint)?.Address, Environment.TickCount64);
        _log.Warning("Client {0} ({1}) authentication failed: {2} (username '{3}'); refusing{4}", _clientId, _remote,
            missing ? "no credentials and anonymous clients are not allowed" : "bad username or password",
            _connect?.Username ?? "", delay > TimeSpan.Zero ? $" after {delay.TotalMilliseconds:F0} ms (repeated failures from this address)" : "");
        if (delay > TimeSpan.Zero)
        {
            Timers.StartSingleTimer(RefuseAuth.Key, refusal, delay);
        }
        else
        {
            RefuseConnect(refusal.Refusal);
        }
    }

    /// <summary>The Common Name of the TLS client certificate, when the connection came through the TLS listener with one.</summary>
    private string? ClientCertificateName()
    {
        try
        {
            return TlsServerSetup.ClientCertificateName(_channel);
        }
        catch (Exception e) when (e is InvalidOperationException or System.Security.Cryptography.CryptographicException)
        {
            _log.Warning("Client {0} ({1}): could not read the TLS client certificate: {2}", _clientId, _remote, e.Message);
            return null;
        }
    }

    private sealed record AuthDecided(AuthResult? Result, Exception? Error);

    private sealed record RefuseAuth(ConnectRefusal Refusal)
    {
        public static readonly object Key = new();
    }
}
