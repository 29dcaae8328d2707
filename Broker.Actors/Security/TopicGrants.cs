using System.Collections.Immutable;
using System.Text.Json;
using Broker.Protocol;

namespace Broker.Security;

/// <summary>
/// The topics a client's JSON Web Token lets it use, from the token's <c>acl</c> claim (EMQX's shape):
/// <code>
///   "acl": { "pub": ["devices/%c/telemetry"], "sub": ["devices/%c/commands/#"], "all": ["chat/%u/#"] }
/// </code>
/// <c>pub</c> filters may be published to, <c>sub</c> filters subscribed to (and read), <c>all</c> both; <c>%c</c> is
/// replaced by the client id and <c>%u</c> by the username when the client connects (an entry whose client id or
/// username is missing or holds '+' or '#' is dropped). The grants hold for the life of the connection. A grant
/// only allows: what the claim does not grant is left to the next source (the HTTP service, the ACL file), and is
/// denied when there is none. Pure: no IO, no actor.
/// </summary>
public sealed class TopicGrants
{
    private readonly ImmutableArray<string> _publish;
    private readonly ImmutableArray<string> _subscribe;

    private TopicGrants(ImmutableArray<string> publish, ImmutableArray<string> subscribe)
    {
        _publish = publish;
        _subscribe = subscribe;
    }

    /// <summary>May the client publish to the topic name?</summary>
    public bool CanPublish(string topic)
    {
        foreach (var filter in _publish)
        {
            if (MqttTopic.Matches(filter, topic))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>May the client subscribe to the filter (a shared subscription is judged by its inner filter)?</summary>
    public bool CanSubscribe(string filter)
    {
        if (MqttTopic.TryParseShared(filter, out _, out var inner))
        {
            filter = inner;
        }

        foreach (var grant in _subscribe)
        {
            if (AclFile.Covers(grant, filter))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>May the client receive a message published to the topic name?</summary>
    public bool CanRead(string topic)
    {
        foreach (var filter in _subscribe)
        {
            if (MqttTopic.Matches(filter, topic))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Reads the <c>acl</c> claim. Returns null when the payload has none; throws <see cref="FormatException"/> when
    /// it is not an object of string arrays holding valid topic filters (the token is then refused).
    /// </summary>
    public static TopicGrants? FromClaim(JsonElement payload, string clientId, string? username)
    {
        if (payload.ValueKind != JsonValueKind.Object || !payload.TryGetProperty("acl", out var acl))
        {
            return null;
        }

        if (acl.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("the acl claim is not an object");
        }

        var publish = ImmutableArray.CreateBuilder<string>();
        var subscribe = ImmutableArray.CreateBuilder<string>();
        foreach (var property in acl.EnumerateObject())
        {
            var targets = property.Name switch
            {
                "pub" => [publish],
                "sub" => [subscribe],
                "all" => new[] { publish, subscribe },
                _ => throw new FormatException($"the acl claim has '{property.Name}' (expected pub, sub or all)"),
            };
            if (property.Value.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException($"acl.{property.Name} is not an array");
            }

            foreach (var entry in property.Value.EnumerateArray())
            {
                var pattern = entry.ValueKind == JsonValueKind.String ? entry.GetString()! : throw new FormatException($"acl.{property.Name} holds a non-string");
                var checkable = pattern.Replace("%c", "c", StringComparison.Ordinal).Replace("%u", "u", StringComparison.Ordinal);
                if (!MqttTopic.IsValidTopicFilter(checkable))
                {
                    throw new FormatException($"acl.{property.Name} holds '{pattern}', which is not a valid topic filter");
                }

                if (Substitute(pattern, clientId, username) is { } filter)
                {
                    foreach (var target in targets)
                    {
                        target.Add(filter);
                    }
                }
            }
        }

        return new TopicGrants(publish.ToImmutable(), subscribe.ToImmutable());
    }

    private static string? Substitute(string pattern, string clientId, string? username)
    {
        if (pattern.Contains("%c", StringComparison.Ordinal))
        {
            if (clientId.Length == 0 || clientId.AsSpan().IndexOfAny('+', '#') >= 0)
            {
                return null;
            }

            pattern = pattern.Replace("%c", clientId, StringComparison.Ordinal);
        }

        if (pattern.Contains("%u", StringComparison.Ordinal))
        {
            if (string.IsNullOrEmpty(username) || username.AsSpan().IndexOfAny('+', '#') >= 0)
            {
                return null;
            }

            pattern = pattern.Replace("%u", username, StringComparison.Ordinal);
        }

        return pattern;
    }
}
