using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Serialization;
using Broker.Configuration;
using Broker.Protocol;

namespace Broker.Security;

public enum AclAction
{
    Publish,
    Subscribe,
}

/// <summary>
/// One question to the HTTP ACL service: may this client publish to the topic name / subscribe to the filter (the
/// inner filter of a shared subscription)? QoS and retain are those of the PUBLISH, or the QoS asked for.
/// </summary>
public sealed record AclQuestion(string ClientId, string? Username, AclAction Action, string Topic, MqttQoS QoS, bool Retain)
{
    /// <summary>The cache key: every field the service is told, so that no answer is reused for another question.</summary>
    public string Key { get; } = string.Join('\n', ClientId, Username ?? "\0", Action == AclAction.Publish ? "p" : "s", Topic, (int)QoS, Retain ? "r" : "");
}

/// <summary>What the service said; <see cref="NoAnswer"/>: unreachable, too slow, another status, or unreadable.</summary>
public enum AclAnswer
{
    Allow,
    Deny,
    Ignore,
    NoAnswer,
}

/// <summary>
/// Authorization by an HTTP service (<c>Auth:Http:AclUrl</c>), the way EMQX's HTTP authorizer and VerneMQ's
/// auth_on_publish / auth_on_subscribe webhooks do it. Each question is POSTed as JSON
/// <code>{"clientId":"sensor-17","username":"dev","action":"publish","topic":"devices/sensor-17/t","qos":1,"retain":false}</code>
/// and the service answers <c>200</c> with <c>{"result":"allow"}</c>, <c>{"result":"deny"}</c> or
/// <c>{"result":"ignore"}</c> (the next source, the ACL file, decides). Answers are cached node-wide for
/// <c>Auth:Http:AclCacheSeconds</c>, at most <c>Auth:Http:AclCacheSize</c> of them (when full, expired answers are
/// swept, and if none had expired the cache starts over: memory stays bounded, the cost is asking again); a missing
/// answer is never cached. Concurrent questions with the same key share one request, so a thousand clients of one
/// user publishing to one topic at once cost one request. Thread-safe; never called on an actor's thread for IO:
/// the connection actor takes <see cref="TryCached"/> synchronously and awaits <see cref="AskAsync"/> as a message.
/// </summary>
public sealed class HttpAuthorizer : IDisposable
{
    private readonly HttpAuthOptions _options;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<string, (long Until, AclAnswer Answer)> _answers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Task<AclAnswer>> _asking = new(StringComparer.Ordinal);
    private readonly Func<long> _clock;

    public HttpAuthorizer(HttpAuthOptions options, Func<long>? clock = null)
    {
        _options = options;
        _clock = clock ?? (() => Environment.TickCount64);
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(options.TimeoutSeconds) };
    }

    /// <summary>No usable answer denies (true) or lets the ACL file decide (false).</summary>
    public bool FailClosed => _options.FailClosed;

    /// <summary>Requests actually sent (for the log and the specs).</summary>
    public long RequestsSent => Interlocked.Read(ref _requestsSent);

    private long _requestsSent;

    /// <summary>A remembered answer, if one is still fresh.</summary>
    public bool TryCached(AclQuestion question, out AclAnswer answer)
    {
        if (_answers.TryGetValue(question.Key, out var cached) && _clock() < cached.Until)
        {
            answer = cached.Answer;
            return true;
        }

        answer = AclAnswer.NoAnswer;
        return false;
    }

    /// <summary>Asks the service (or joins the request already asking the same question); never throws.</summary>
    public Task<AclAnswer> AskAsync(AclQuestion question)
    {
        if (TryCached(question, out var cached))
        {
            return Task.FromResult(cached);
        }

        var asking = new TaskCompletionSource<AclAnswer>(TaskCreationOptions.RunContinuationsAsynchronously);
        var shared = _asking.GetOrAdd(question.Key, asking.Task);
        if (shared != asking.Task)
        {
            return shared; // the same question is already out: share its answer
        }

        _ = AnswerAsync(question, asking);
        return asking.Task;
    }

    /// <summary>Asks, remembers, then lets go of the shared request (in that order: no window without either).</summary>
    private async Task AnswerAsync(AclQuestion question, TaskCompletionSource<AclAnswer> asking)
    {
        var answer = await SendAsync(question).ConfigureAwait(false);
        if (answer != AclAnswer.NoAnswer && _options.AclCacheSeconds > 0)
        {
            Remember(question.Key, answer);
        }

        _asking.TryRemove(new KeyValuePair<string, Task<AclAnswer>>(question.Key, asking.Task));
        asking.SetResult(answer);
    }

    private async Task<AclAnswer> SendAsync(AclQuestion question)
    {
        AclAnswer answer;
        try
        {
            Interlocked.Increment(ref _requestsSent);
            using var response = await _http.PostAsJsonAsync(_options.AclUrl, new Question(question.ClientId, question.Username,
                question.Action == AclAction.Publish ? "publish" : "subscribe", question.Topic, (int)question.QoS, question.Retain))
                .ConfigureAwait(false);
            var body = response.StatusCode == HttpStatusCode.OK
                ? await response.Content.ReadFromJsonAsync<Answer>().ConfigureAwait(false)
                : null;
            answer = body?.Result?.ToLowerInvariant() switch
            {
                "allow" => AclAnswer.Allow,
                "deny" => AclAnswer.Deny,
                "ignore" => AclAnswer.Ignore,
                _ => AclAnswer.NoAnswer,
            };
        }
        catch (Exception)
        {
            // Unreachable, too slow, unreadable, or the node is stopping (client disposed): no answer. Nothing may
            // escape, or the connection that waits for this answer would wait for ever.
            answer = AclAnswer.NoAnswer;
        }

        return answer;
    }

    private void Remember(string key, AclAnswer answer)
    {
        lock (_answers) // after an HTTP round trip, not on the message path: a lock keeps the bound exact
        {
            RememberLocked(key, answer);
        }
    }

    private void RememberLocked(string key, AclAnswer answer)
    {
        var now = _clock();
        if (_answers.Count >= _options.AclCacheSize)
        {
            foreach (var (k, v) in _answers)
            {
                if (v.Until <= now)
                {
                    _answers.TryRemove(k, out _);
                }
            }

            if (_answers.Count >= _options.AclCacheSize)
            {
                _answers.Clear();
            }
        }

        _answers[key] = (now + (_options.AclCacheSeconds * 1000L), answer);
    }

    /// <summary>Answers held now (bounded by Auth:Http:AclCacheSize).</summary>
    public int CachedAnswers => _answers.Count;

    public void Dispose() => _http.Dispose();

    private sealed record Question(
        [property: JsonPropertyName("clientId")] string ClientId,
        [property: JsonPropertyName("username")] string? Username,
        [property: JsonPropertyName("action")] string Action,
        [property: JsonPropertyName("topic")] string Topic,
        [property: JsonPropertyName("qos")] int QoS,
        [property: JsonPropertyName("retain")] bool Retain);

    private sealed record Answer([property: JsonPropertyName("result")] string? Result);
}
