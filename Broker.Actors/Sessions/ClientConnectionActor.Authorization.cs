using Akka.Actor;
using Broker.Protocol;
using Broker.Security;

namespace Broker.Sessions;

/// <summary>
/// The chain that decides a client's topics, first opinion wins:
/// <code>
///   1. its token's acl claim (TopicGrants)     a grant allows; nothing granted: next
///   2. the HTTP service (Auth:Http:AclUrl)      allow / deny; ignore (or no answer, not fail-closed): next
///   3. the ACL file (Auth:AclFile)              its rules decide (what it does not grant is denied)
///   4. none of them configured                  allowed, unless the token carried an acl claim
/// </code>
/// The HTTP service is asked off this actor's thread: on a question no cached answer covers, the packet is put back
/// in the stash with every packet behind it (so a client's packets keep their order, DESIGN promise 2), the
/// questions go out, and their answers come back as <see cref="AclDecided"/>; the packets then run again and find
/// the answers. Other messages (deliveries, acknowledgements from the session) are handled meanwhile.
/// <para>Delivery: the HTTP service is asked at SUBSCRIBE, about the filter, never per delivered message. A filter it
/// allowed on this connection lets every message matching it through; other messages are judged on their concrete
/// topic by the token's sub grants and the ACL file (steps 1, 3, 4), cached per topic.</para>
/// </summary>
public sealed partial class ClientConnectionActor
{
    private TopicGrants? _grants;
    // the filters the HTTP service allowed, while subscribed (in ConnectionOccasionalState, as the next three)
    private HashSet<string>? _httpGrantedFilters { get => _occasional?.HttpGrantedFilters; set { if (_occasional is not null || value is not null) Occasional.HttpGrantedFilters = value; } }

    private Dictionary<string, AclAnswer>? _freshAnswers { get => _occasional?.FreshAnswers; set { if (_occasional is not null || value is not null) Occasional.FreshAnswers = value; } }

    private bool _aclPending;

    private object? _authAwaitingWill { get => _occasional?.AuthAwaitingWill; set { if (_occasional is not null || value is not null) Occasional.AuthAwaitingWill = value; } }

    private int _grantsVersion { get => _occasional?.GrantsVersion ?? 0; set { if (_occasional is not null || value != 0) Occasional.GrantsVersion = value; } }

    /// <summary>Any topic check at all? False on a node without ACL file, HTTP ACL or token grants: nothing to do.</summary>
    private bool TopicsChecked => _grants is not null || _context.Security.Acl is not null || _context.Security.HttpAcl is not null;

    /// <summary>May the client publish there? Null: the HTTP service is being asked and the current packet waits.</summary>
    private bool? MayPublish(string topic, MqttQoS qos, bool retain, bool stashPacket = true)
    {
        if (_grants?.CanPublish(topic) == true)
        {
            return true;
        }

        if (_context.Security.HttpAcl is { } http)
        {
            var question = new AclQuestion(_clientId, _username, AclAction.Publish, topic, qos, retain);
            if (!TryAnswer(http, question, out var answer))
            {
                Ask([question], stashPacket);
                return null;
            }

            if (Decisive(http, answer) is { } decided)
            {
                return decided;
            }
        }

        return _context.Security.Acl is { } acl ? acl.CanWrite(_clientId, _username, topic) : _grants is null;
    }

    /// <summary>
    /// Decides every filter of a SUBSCRIBE (null entries: not to be judged here). Null result: questions went to the
    /// HTTP service and the packet waits; otherwise one verdict per filter.
    /// </summary>
    private bool[]? MaySubscribe(IReadOnlyList<(string Filter, MqttQoS QoS)?> filters)
    {
        var http = _context.Security.HttpAcl;
        List<AclQuestion>? questions = null;
        if (http is not null)
        {
            foreach (var entry in filters)
            {
                if (entry is { } f && _grants?.CanSubscribe(f.Filter) != true)
                {
                    var question = new AclQuestion(_clientId, _username, AclAction.Subscribe, InnerFilter(f.Filter), f.QoS, false);
                    if (!TryAnswer(http, question, out _))
                    {
                        (questions ??= new()).Add(question);
                    }
                }
            }

            if (questions is not null)
            {
                Ask(questions, stashPacket: true);
                return null;
            }
        }

        var verdicts = new bool[filters.Count];
        for (var i = 0; i < filters.Count; i++)
        {
            if (filters[i] is not { } f)
            {
                continue;
            }

            if (_grants?.CanSubscribe(f.Filter) == true)
            {
                verdicts[i] = true;
                continue;
            }

            if (http is not null)
            {
                var inner = InnerFilter(f.Filter);
                TryAnswer(http, new AclQuestion(_clientId, _username, AclAction.Subscribe, inner, f.QoS, false), out var answer);
                if (Decisive(http, answer) is { } decided)
                {
                    verdicts[i] = decided;
                    if (decided && answer == AclAnswer.Allow)
                    {
                        // Messages matching this filter are readable now (see the delivery note above).
                        _grantsVersion += (_httpGrantedFilters ??= new(StringComparer.Ordinal)).Add(inner) ? 1 : 0;
                    }

                    continue;
                }
            }

            verdicts[i] = _context.Security.Acl is { } acl ? acl.CanSubscribe(_clientId, _username, f.Filter) : _grants is null;
        }

        return verdicts;
    }

    /// <summary>May this client receive a message on the topic (steps 1, 3, 4, plus the filters the HTTP service allowed)?</summary>
    private bool MayReadUncached(string topic)
    {
        if (_grants?.CanRead(topic) == true)
        {
            return true;
        }

        if (_httpGrantedFilters is not null)
        {
            foreach (var filter in _httpGrantedFilters)
            {
                if (MqttTopic.Matches(filter, topic))
                {
                    return true;
                }
            }
        }

        return _context.Security.Acl is { } acl ? acl.CanRead(_clientId, _username, topic) : _grants is null;
    }

    /// <summary>Done with the current packet: the answers that came back for it are not to be reused by another.</summary>
    private void ForgetFreshAnswers() => _freshAnswers?.Clear();

    private bool TryAnswer(HttpAuthorizer http, AclQuestion question, out AclAnswer answer) =>
        (_freshAnswers is not null && _freshAnswers.TryGetValue(question.Key, out answer)) || http.TryCached(question, out answer);

    /// <summary>Allow: true; deny: false; ignore, or no answer when not fail-closed: null (the next source decides).</summary>
    private static bool? Decisive(HttpAuthorizer http, AclAnswer answer) => answer switch
    {
        AclAnswer.Allow => true,
        AclAnswer.Deny => false,
        AclAnswer.NoAnswer when http.FailClosed => false,
        _ => null,
    };

    private void Ask(List<AclQuestion> questions, bool stashPacket)
    {
        if (stashPacket)
        {
            StashPacket();
        }

        _aclPending = true;
        var http = _context.Security.HttpAcl!;
        var asks = questions.Select(q => http.AskAsync(q)).ToArray();
        Task.WhenAll(asks).PipeTo(Self, success: answers => new AclDecided(questions, answers), failure: _ => new AclDecided(questions, null));
    }

    /// <summary>The service answered: the waiting packets (or the waiting CONNECT's will) run again and find the answers.</summary>
    private void HandleAclDecided(AclDecided decided)
    {
        _aclPending = false;
        var fresh = _freshAnswers ??= new(StringComparer.Ordinal);
        for (var i = 0; i < decided.Questions.Count; i++)
        {
            fresh[decided.Questions[i].Key] = decided.Answers?[i] ?? AclAnswer.NoAnswer;
        }

        if (_authAwaitingWill is AuthDecided auth)
        {
            _authAwaitingWill = null;
            HandleAuthDecided(auth);
        }
        else if (_session is not null)
        {
            Stash.UnstashAll(); // while re-attaching, SessionAttached unstashes them
        }
    }

    private static string InnerFilter(string filter) => MqttTopic.TryParseShared(filter, out _, out var inner) ? inner : filter;

    private sealed record AclDecided(IReadOnlyList<AclQuestion> Questions, AclAnswer[]? Answers);
}
