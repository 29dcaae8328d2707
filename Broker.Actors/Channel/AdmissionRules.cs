using System.Collections.Immutable;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Channel;

/// <summary>What becomes of an inbound PUBLISH the broker's limits or its ACL judged.</summary>
public enum PublishAdmission : byte
{
    /// <summary>It goes on to routing.</summary>
    Admit,

    /// <summary>It is dropped and answered (PUBACK / PUBREC with <see cref="PublishVerdict.Reason"/>; nothing at QoS 0).</summary>
    Refuse,

    /// <summary>The connection is closed with <see cref="PublishVerdict.Reason"/>.</summary>
    Disconnect,
}

/// <summary>An inbound PUBLISH judged: what becomes of it, with which reason code, and why (for the log and metrics).</summary>
public readonly record struct PublishVerdict(PublishAdmission Outcome, MqttReasonCode Reason, PublishRefusal Why)
{
    public static readonly PublishVerdict Admitted = new(PublishAdmission.Admit, MqttReasonCode.Success, PublishRefusal.None);
}

/// <summary>Why a PUBLISH was not admitted.</summary>
public enum PublishRefusal : byte
{
    None,

    /// <summary>More levels than Mqtt:MaxTopicLevels.</summary>
    TooDeep,

    /// <summary>The ACL denied it (a client's publish to $SYS/ always is).</summary>
    Denied,
}

/// <summary>What becomes of one topic filter of a SUBSCRIBE before it reaches the session.</summary>
public enum FilterAdmission : byte
{
    /// <summary>It goes to the session (which refuses an invalid filter itself).</summary>
    Kept,

    /// <summary>More levels than Mqtt:MaxTopicLevels.</summary>
    TooDeep,

    /// <summary>The ACL denied it.</summary>
    Denied,
}

/// <summary>
/// The broker's own limits and the ACL's verdicts applied to PUBLISH and SUBSCRIBE, apart from the connection actor that
/// asks the ACL, counts, logs and writes: which reason code a refused PUBLISH is answered with (or whether the
/// connection closes), which filters of a SUBSCRIBE are refused here and with what, and how the SUBACK the session
/// sends for the rest is merged with them, in the order the client asked (MQTT-v5.0 3.9.3: "The order of Reason Codes
/// in the SUBACK packet MUST match the order of Topic Filters in the SUBSCRIBE packet" [MQTT-3.9.3-1]).
/// <list type="bullet">
/// <item>A topic deeper than Mqtt:MaxTopicLevels: a v5 QoS 1/2 PUBLISH is answered 0x90 Topic Name invalid; QoS 0 and
///   3.1.1 (which cannot be told why) close the connection with 0x90. A filter that deep is refused: v5 0x8F Topic
///   Filter invalid, 3.1.1 0x80 Failure.</item>
/// <item>A PUBLISH the ACL denies is dropped: v5 answers 0x87 Not authorized; 3.1.1 has no way to say it and
///   acknowledges it as delivered (a positive acknowledgement or a close, [MQTT-3.3.5-2]). $SYS/ is the broker's own
///   (MQTT-v5.0 4.7.2): a client's publish there is always denied. A denied filter: v5 0x87, 3.1.1 0x80.</item>
/// </list>
/// Pure: the ACL's answers come in as arguments.
/// </summary>
public static class AdmissionRules
{
    /// <summary>The levels of a topic name or filter ("a/b/c" has 3; "" and "a" have 1).</summary>
    public static int Levels(string topic)
    {
        var levels = 1;
        foreach (var c in topic)
        {
            if (c == '/')
            {
                levels++;
            }
        }

        return levels;
    }

    /// <summary>Whether <paramref name="topic"/> is the broker's own ($SYS and below).</summary>
    public static bool IsSystemTopic(string topic) => topic.StartsWith("$SYS/", StringComparison.Ordinal) || topic == "$SYS";

    /// <summary>
    /// The topic-level limit of a PUBLISH on <paramref name="topic"/>, judged before the ACL is asked (0: no limit).
    /// </summary>
    public static PublishVerdict CheckDepth(string topic, int maxLevels, MqttQoS qos, bool v5) =>
        maxLevels > 0 && Levels(topic) > maxLevels
            ? new PublishVerdict(v5 && qos != MqttQoS.AtMostOnce ? PublishAdmission.Refuse : PublishAdmission.Disconnect,
                MqttReasonCode.TopicNameInvalid, PublishRefusal.TooDeep)
            : PublishVerdict.Admitted;

    /// <summary>A PUBLISH the ACL judged: <paramref name="allowed"/> or denied.</summary>
    public static PublishVerdict AfterAcl(bool allowed, bool v5) => allowed
        ? PublishVerdict.Admitted
        : new PublishVerdict(PublishAdmission.Refuse, v5 ? MqttReasonCode.NotAuthorized : MqttReasonCode.Success, PublishRefusal.Denied);

    /// <summary>
    /// The filters of a SUBSCRIBE that the ACL is to judge: those within the level limit and valid (an invalid one is
    /// the session's to refuse), each with its QoS, else null; <paramref name="tooDeep"/> marks the ones past the limit.
    /// </summary>
    public static (string Filter, MqttQoS QoS)?[] ToJudge(ImmutableArray<MqttTopicSubscription> subscriptions, int maxLevels, out bool[] tooDeep)
    {
        tooDeep = new bool[subscriptions.Length];
        var judged = new (string Filter, MqttQoS QoS)?[subscriptions.Length];
        for (var i = 0; i < subscriptions.Length; i++)
        {
            var filter = subscriptions[i].TopicFilter;
            var levels = MqttTopic.TryParseShared(filter, out _, out var inner) ? Levels(inner) : Levels(filter);
            tooDeep[i] = maxLevels > 0 && levels > maxLevels;
            if (!tooDeep[i] && MqttTopic.IsValidTopicFilter(filter))
            {
                judged[i] = (filter, subscriptions[i].QoS);
            }
        }

        return judged;
    }

    /// <summary>
    /// Each filter's fate: past the level limit, denied by the ACL (<paramref name="verdicts"/>, null when no ACL
    /// applies; only filters in <paramref name="judged"/> were asked about), or kept for the session.
    /// </summary>
    public static FilterAdmission[] Admit(bool[] tooDeep, (string Filter, MqttQoS QoS)?[] judged, bool[]? verdicts)
    {
        var admissions = new FilterAdmission[tooDeep.Length];
        for (var i = 0; i < admissions.Length; i++)
        {
            admissions[i] = tooDeep[i] ? FilterAdmission.TooDeep
                : judged[i] is not null && verdicts is not null && !verdicts[i] ? FilterAdmission.Denied
                : FilterAdmission.Kept;
        }

        return admissions;
    }

    /// <summary>The SUBACK code of a filter refused here, or null for a kept one (the session answers it).</summary>
    public static MqttReasonCode? RefusalCode(FilterAdmission admission, bool v5) => admission switch
    {
        FilterAdmission.TooDeep => v5 ? MqttReasonCode.TopicFilterInvalid : MqttReasonCode.UnspecifiedError,
        FilterAdmission.Denied => v5 ? MqttReasonCode.NotAuthorized : MqttReasonCode.UnspecifiedError,
        _ => null,
    };

    /// <summary>
    /// The SUBACK the client gets: the codes of the filters refused here in their places, and the session's codes for
    /// the kept ones, in order, filling the gaps (a missing one is 0x80, which cannot happen while the session answers
    /// every filter it was given).
    /// </summary>
    public static ImmutableArray<MqttReasonCode> MergeSubAck(ImmutableArray<MqttReasonCode?> refused, ImmutableArray<MqttReasonCode> granted)
    {
        var merged = ImmutableArray.CreateBuilder<MqttReasonCode>(refused.Length);
        var next = 0;
        foreach (var code in refused)
        {
            merged.Add(code ?? (next < granted.Length ? granted[next++] : MqttReasonCode.UnspecifiedError));
        }

        return merged.MoveToImmutable();
    }
}
