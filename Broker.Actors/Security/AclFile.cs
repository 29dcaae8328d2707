using System.Collections.Immutable;
using Broker.Protocol;

namespace Broker.Security;

/// <summary>What a rule grants (or, for <see cref="Deny"/>, takes away).</summary>
[Flags]
public enum AclAccess
{
    None = 0,
    Read = 1,
    Write = 2,
    ReadWrite = Read | Write,
    Deny = 4,
}

/// <summary>One <c>topic</c> or <c>pattern</c> line.</summary>
public sealed record AclRule(AclAccess Access, string Filter, bool IsPattern, int Line);

/// <summary>
/// An access control list in the spirit of Mosquitto's <c>acl_file</c>:
/// <code>
///   # lines before the first "user" line apply to anonymous clients
///   topic read public/#
///   user alice                  # the topic lines below apply to the client logged in as alice
///   topic readwrite alice/#
///   topic deny alice/secret/#   # deny wins over any grant, in both directions
///   pattern write devices/%c/#  # pattern lines apply to every client: %c client id, %u username
/// </code>
/// <c>topic [read|write|readwrite|deny] &lt;filter&gt;</c>, the access defaulting to readwrite. With an ACL file in
/// force, everything not granted is denied. Publishing and delivery check a concrete topic name against the filters;
/// SUBSCRIBE checks that a read rule covers the whole requested filter (so <c>read sensors/#</c> allows
/// <c>sensors/+/temp</c> but not <c>#</c>), and messages delivered through a wildcard subscription are checked
/// again on their own topic. A client id or username holding '+' or '#' never matches a pattern.
/// </summary>
public sealed class AclFile
{
    private readonly ImmutableArray<AclRule> _anonymous;
    private readonly ImmutableDictionary<string, ImmutableArray<AclRule>> _users;
    private readonly ImmutableArray<AclRule> _patterns;

    private AclFile(ImmutableArray<AclRule> anonymous, ImmutableDictionary<string, ImmutableArray<AclRule>> users, ImmutableArray<AclRule> patterns)
    {
        _anonymous = anonymous;
        _users = users;
        _patterns = patterns;
    }

    public static AclFile Parse(string text, string path)
    {
        var anonymous = ImmutableArray.CreateBuilder<AclRule>();
        var users = new Dictionary<string, ImmutableArray<AclRule>.Builder>(StringComparer.Ordinal);
        var patterns = ImmutableArray.CreateBuilder<AclRule>();
        ImmutableArray<AclRule>.Builder current = anonymous;
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var space = line.IndexOfAny([' ', '\t']);
            var keyword = space < 0 ? line : line[..space];
            var rest = space < 0 ? "" : line[(space + 1)..].Trim();
            switch (keyword)
            {
                case "user":
                    if (rest.Length == 0)
                    {
                        throw new SecurityFileException(path, lineNumber, "'user' needs a username");
                    }

                    if (!users.TryGetValue(rest, out current!))
                    {
                        current = ImmutableArray.CreateBuilder<AclRule>();
                        users[rest] = current;
                    }

                    break;
                case "topic":
                    current.Add(ParseRule(rest, isPattern: false, path, lineNumber));
                    break;
                case "pattern":
                    patterns.Add(ParseRule(rest, isPattern: true, path, lineNumber));
                    break;
                default:
                    throw new SecurityFileException(path, lineNumber, $"unknown keyword '{keyword}' (expected user, topic or pattern)");
            }
        }

        return new AclFile(anonymous.ToImmutable(),
            users.ToImmutableDictionary(kv => kv.Key, kv => kv.Value.ToImmutable(), StringComparer.Ordinal), patterns.ToImmutable());
    }

    private static AclRule ParseRule(string rest, bool isPattern, string path, int line)
    {
        var space = rest.IndexOfAny([' ', '\t']);
        var first = space < 0 ? rest : rest[..space];
        var access = first switch
        {
            "read" => AclAccess.Read,
            "write" => AclAccess.Write,
            "readwrite" => AclAccess.ReadWrite,
            "deny" => AclAccess.Deny,
            _ => AclAccess.None,
        };
        var filter = access == AclAccess.None ? rest : rest[(space + 1)..].Trim();
        if (access == AclAccess.None)
        {
            access = AclAccess.ReadWrite;
        }
        else if (space < 0)
        {
            filter = "";
        }

        var checkable = isPattern ? filter.Replace("%c", "c").Replace("%u", "u") : filter;
        if (filter.Length == 0 || !MqttTopic.IsValidTopicFilter(checkable))
        {
            throw new SecurityFileException(path, line, $"'{filter}' is not a valid topic filter");
        }

        return new AclRule(access, filter, isPattern, line);
    }

    /// <summary>May this client publish to the topic name?</summary>
    public bool CanWrite(string clientId, string? username, string topic) =>
        Decide(clientId, username, AclAccess.Write, (filter) => MqttTopic.Matches(filter, topic));

    /// <summary>May this client receive a message published to the topic name?</summary>
    public bool CanRead(string clientId, string? username, string topic) =>
        Decide(clientId, username, AclAccess.Read, (filter) => MqttTopic.Matches(filter, topic));

    /// <summary>May this client subscribe to the filter (a shared subscription is judged by its inner filter)?</summary>
    public bool CanSubscribe(string clientId, string? username, string filter)
    {
        if (MqttTopic.TryParseShared(filter, out _, out var inner))
        {
            filter = inner;
        }

        return Decide(clientId, username, AclAccess.Read, acl => Covers(acl, filter));
    }

    private bool Decide(string clientId, string? username, AclAccess wanted, Func<string, bool> matches)
    {
        var own = username is null ? _anonymous : _users.GetValueOrDefault(username, ImmutableArray<AclRule>.Empty);
        var granted = false;
        foreach (var rule in own)
        {
            if (rule.Access == AclAccess.Deny ? matches(rule.Filter) : !granted && (rule.Access & wanted) != 0 && matches(rule.Filter))
            {
                if (rule.Access == AclAccess.Deny)
                {
                    return false;
                }

                granted = true;
            }
        }

        foreach (var rule in _patterns)
        {
            if ((rule.Access == AclAccess.Deny || (!granted && (rule.Access & wanted) != 0)) &&
                Substitute(rule.Filter, clientId, username) is { } filter && matches(filter))
            {
                if (rule.Access == AclAccess.Deny)
                {
                    return false;
                }

                granted = true;
            }
        }

        return granted;
    }

    private static string? Substitute(string pattern, string clientId, string? username)
    {
        if (pattern.Contains("%c", StringComparison.Ordinal))
        {
            if (clientId.AsSpan().IndexOfAny('+', '#') >= 0)
            {
                return null;
            }

            pattern = pattern.Replace("%c", clientId, StringComparison.Ordinal);
        }

        if (pattern.Contains("%u", StringComparison.Ordinal))
        {
            if (username is null || username.AsSpan().IndexOfAny('+', '#') >= 0)
            {
                return null;
            }

            pattern = pattern.Replace("%u", username, StringComparison.Ordinal);
        }

        return pattern;
    }

    /// <summary>
    /// Does every topic that <paramref name="filter"/> can match also match <paramref name="acl"/>? Level by level:
    /// '#' in the ACL covers the rest, '+' covers any one level but not '#', a name covers only itself.
    /// </summary>
    public static bool Covers(string acl, string filter)
    {
        if (filter.StartsWith('$') && acl.Length > 0 && acl[0] is '+' or '#')
        {
            return false; // [MQTT-4.7.2-1] wildcards at the start do not reach $ topics
        }

        var a = acl.Split('/');
        var f = filter.Split('/');
        for (var i = 0; i < a.Length; i++)
        {
            if (a[i] == "#")
            {
                return true;
            }

            if (i >= f.Length || f[i] == "#")
            {
                return false;
            }

            if (a[i] != "+" && (f[i] != a[i]))
            {
                return false;
            }
        }

        return f.Length == a.Length;
    }
}
