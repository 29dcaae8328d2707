using System.Collections.Immutable;
using Akka.Event;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Security;

namespace Broker.Sessions;

/// <summary>
/// Authorization (token claims, Auth:Http:AclUrl, Auth:AclFile: the chain is in ClientConnectionActor.Authorization.cs)
/// and the per-client limits Mqtt:MaxTopicLevels and Mqtt:MaxPublishRate, applied to
/// decoded packets after topic aliases are resolved, so that no encoding trick reaches past them:
/// <list type="bullet">
/// <item>PUBLISH not allowed: v5 PUBACK/PUBREC 0x87; 3.1.1 acknowledged as usual and dropped (3.1.1 has no way to
/// say no), counted in BrokerMetrics.AclDeniedPublish. Too many topic levels: v5 PUBACK/PUBREC 0x90 (QoS 0:
/// DISCONNECT 0x90); 3.1.1 the connection is closed.</item>
/// <item>SUBSCRIBE: each refused filter gets SUBACK 0x80 (v5 0x87 for the ACL, 0x8F for too many levels) and the
/// session never hears of it; the session's SUBACK for the rest is merged back in the client's order.</item>
/// <item>Delivery: a message whose topic this client may not read is not sent (checked on the concrete topic, so a
/// permitted wildcard subscription cannot reach into a denied subtree); decisions are cached per topic until the
/// ACL file is reloaded or the filters the HTTP service allowed change.</item>
/// <item>Publish rate: over Mqtt:MaxPublishRate the socket is not read until tokens return (as EMQX throttles), so
/// a fast client slows down instead of being disconnected and TCP pushes back on it.</item>
/// </list>
/// </summary>
public sealed partial class ClientConnectionActor
{
    private const int MaxCachedReadDecisions = 1024;
    // created on the first ACL read check
    private Dictionary<string, bool>? _readDecisions { get => _occasional?.ReadDecisions; set { if (_occasional is not null || value is not null) Occasional.ReadDecisions = value; } }

    private Dictionary<ushort, ImmutableArray<MqttReasonCode?>>? _subAckMerges { get => _occasional?.SubAckMerges; set { if (_occasional is not null || value is not null) Occasional.SubAckMerges = value; } }

    private int _readDecisionsVersion { get => _occasional?.ReadDecisionsVersion ?? -1; set { if (_occasional is not null || value != -1) Occasional.ReadDecisionsVersion = value; } }

    private TokenBucket? _publishBucket { get => _occasional?.PublishBucket; set { if (_occasional is not null || value is not null) Occasional.PublishBucket = value; } }
    private bool _rateLimited;

    /// <summary>ACL and topic-level checks of an inbound PUBLISH (<see cref="AdmissionRules"/>); false when it was refused (and answered) here.</summary>
    private bool AdmitPublish(MqttPublishPacket publish, string topic)
    {
        var maxLevels = _context.Options.Mqtt.MaxTopicLevels;
        var depth = AdmissionRules.CheckDepth(topic, maxLevels, publish.QoS, IsV5);
        if (depth.Outcome != PublishAdmission.Admit)
        {
            _context.Metrics.LimitRejected();
            Warn("published to a topic with more than Mqtt:MaxTopicLevels ({0}) levels", maxLevels);
            Carry(publish, depth);
            return false;
        }

        var verdict = AdmissionRules.IsSystemTopic(topic) ? false : TopicsChecked ? MayPublish(topic, publish.QoS, publish.Retain) : true;
        if (verdict is null)
        {
            return false; // the HTTP service is being asked; the packet waits in the stash
        }

        ForgetFreshAnswers();
        if (verdict == false)
        {
            _context.Metrics.AclDenyPublish();
            _log.Info("Client {0} ({1}) may not publish to {2}: dropped", _clientId, _remote, topic);
            Carry(publish, AdmissionRules.AfterAcl(allowed: false, IsV5));
            return false;
        }

        return true;
    }

    private void Carry(MqttPublishPacket publish, PublishVerdict verdict)
    {
        if (verdict.Outcome == PublishAdmission.Disconnect)
        {
            Disconnect(verdict.Reason);
        }
        else
        {
            AnswerRefusedPublish(publish, verdict.Reason);
        }
    }

    private void AnswerRefusedPublish(MqttPublishPacket publish, MqttReasonCode reason)
    {
        switch (publish.QoS)
        {
            case MqttQoS.AtLeastOnce:
                Write(new MqttPubAckPacket { PacketId = publish.PacketId, ReasonCode = reason });
                break;
            case MqttQoS.ExactlyOnce:
                // v5: a reason >= 0x80 ends the exchange; 3.1.1: the client sends PUBREL and the session completes it.
                Write(new MqttPubRecPacket { PacketId = publish.PacketId, ReasonCode = reason });
                break;
        }
    }

    /// <summary>Counts a PUBLISH against Mqtt:MaxPublishRate and stops reading the socket when the bucket is empty.</summary>
    private void ChargePublishRate()
    {
        var rate = _context.Options.Mqtt.MaxPublishRate;
        if (rate <= 0)
        {
            return;
        }

        var now = Environment.TickCount64;
        _publishBucket ??= new TokenBucket(rate, rate, now);
        if (_publishBucket.Take(now) || _rateLimited)
        {
            return;
        }

        _rateLimited = true;
        _context.Metrics.RateLimitPaused();
        UpdateReading();
        Timers.StartSingleTimer(RateResume.Instance, RateResume.Instance, TimeSpan.FromMilliseconds(Math.Max(1, _publishBucket.MsUntilAvailable(now))));
    }

    private void HandleRateResume()
    {
        var wait = _publishBucket?.MsUntilAvailable(Environment.TickCount64) ?? 0;
        if (wait > 0)
        {
            Timers.StartSingleTimer(RateResume.Instance, RateResume.Instance, TimeSpan.FromMilliseconds(wait));
            return;
        }

        _rateLimited = false;
        UpdateReading();
    }

    /// <summary>
    /// ACL and topic-level checks of SUBSCRIBE: refused filters are answered here, the rest go to the session.
    /// Returns the packet for the session, or null when nothing is left for it.
    /// </summary>
    private MqttSubscribePacket? AdmitSubscribe(MqttSubscribePacket subscribe)
    {
        var maxLevels = _context.Options.Mqtt.MaxTopicLevels;
        if (!TopicsChecked && maxLevels <= 0)
        {
            return subscribe;
        }

        var subscriptions = subscribe.Subscriptions;
        var judged = AdmissionRules.ToJudge(subscriptions, maxLevels, out var tooDeep);
        bool[]? verdicts = null;
        if (TopicsChecked && (verdicts = MaySubscribe(judged)) is null)
        {
            return null; // the HTTP service is being asked; the packet waits in the stash
        }

        ForgetFreshAnswers();
        var admissions = AdmissionRules.Admit(tooDeep, judged, verdicts);
        var refused = new MqttReasonCode?[subscriptions.Length];
        var kept = ImmutableArray.CreateBuilder<MqttTopicSubscription>();
        for (var i = 0; i < subscriptions.Length; i++)
        {
            switch (admissions[i])
            {
                case FilterAdmission.TooDeep:
                    _context.Metrics.LimitRejected();
                    Warn("subscribed to a filter with more than Mqtt:MaxTopicLevels ({0}) levels", maxLevels);
                    break;
                case FilterAdmission.Denied:
                    _context.Metrics.AclDenySubscribe();
                    _log.Info("Client {0} ({1}) may not subscribe to {2}: refused", _clientId, _remote, subscriptions[i].TopicFilter);
                    break;
                default:
                    kept.Add(subscriptions[i]);
                    break;
            }

            refused[i] = AdmissionRules.RefusalCode(admissions[i], IsV5);
        }

        if (kept.Count == subscribe.Subscriptions.Length)
        {
            return subscribe;
        }

        if (kept.Count == 0)
        {
            Write(new MqttSubAckPacket { PacketId = subscribe.PacketId, ReasonCodes = refused.Select(c => c!.Value).ToImmutableArray() });
            return null;
        }

        (_subAckMerges ??= new())[subscribe.PacketId] = refused.ToImmutableArray();
        return subscribe with { Subscriptions = kept.ToImmutable() };
    }

    /// <summary>
    /// Writes a packet from the session: a PUBREC ends the wait for that QoS 2 publish; a SUBACK for a partly refused
    /// SUBSCRIBE gets the refusals put back.
    /// </summary>
    private void HandleSendPacket(SendPacket send)
    {
        if (send.Packet is MqttPubRecPacket rec)
        {
            Qos2Answered(_inboundState?.HandOverAnswered(rec.PacketId, rec.ReasonCode) == true);
        }
        else if (send.Packet is MqttPubCompPacket comp)
        {
            _inboundState?.ReleaseAnswered(comp.PacketId);
        }
        else if (send.Packet is MqttSubAckPacket or MqttUnsubAckPacket)
        {
            RequestAnswered(send.Packet is MqttSubAckPacket s ? s.PacketId : ((MqttUnsubAckPacket)send.Packet).PacketId);
        }

        if (send.Packet is MqttSubAckPacket subAck && _subAckMerges is not null && _subAckMerges.Remove(subAck.PacketId, out var refused))
        {
            Write(subAck with { ReasonCodes = AdmissionRules.MergeSubAck(refused, subAck.ReasonCodes) });
            return;
        }

        Write(send.Packet);
    }

    /// <summary>May this client receive a message on <paramref name="topic"/>? Cached per topic until the ACL reloads.</summary>
    private bool MayRead(string topic)
    {
        if (!TopicsChecked)
        {
            return true;
        }

        var readDecisions = _readDecisions ??= new(StringComparer.Ordinal);
        var version = _context.Security.AclVersion + _grantsVersion;
        if (_readDecisionsVersion != version || readDecisions.Count >= MaxCachedReadDecisions)
        {
            readDecisions.Clear();
            _readDecisionsVersion = version;
        }

        if (!readDecisions.TryGetValue(topic, out var allowed))
        {
            allowed = MayReadUncached(topic);
            readDecisions[topic] = allowed;
        }

        return allowed;
    }

    /// <summary>
    /// Will messages are publishes too: a will the client could not publish itself refuses the CONNECT. Null: the HTTP
    /// service is being asked, and <paramref name="decided"/> runs again with its answer.
    /// </summary>
    private bool? MayPublishWill(MqttConnectPacket connect, object decided)
    {
        if (connect.Will is not { } will || !TopicsChecked)
        {
            return true;
        }

        var allowed = MayPublish(will.Topic, will.QoS, will.Retain, stashPacket: false);
        if (allowed is null)
        {
            _authAwaitingWill = decided;
            return null;
        }

        ForgetFreshAnswers();
        return allowed;
    }

    private sealed class RateResume
    {
        public static readonly RateResume Instance = new();
    }
}
