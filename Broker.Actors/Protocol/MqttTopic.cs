using System.Text;

namespace Broker.Protocol;

/// <summary>
/// Why a topic name or topic filter was rejected. Validation returns this instead of throwing
/// (the caller maps it to a reason code in one place: 0x90 Topic Name invalid for PUBLISH,
/// 0x8F Topic Filter invalid / 0x9E Shared Subscriptions not supported for SUBSCRIBE).
/// </summary>
public enum TopicValidation : byte
{
    Valid = 0,

    /// <summary>Topic names and filters MUST be at least one character long [MQTT-4.7.3-1].</summary>
    Empty,

    /// <summary>Longer than the 65,535 bytes a UTF-8 Encoded String can carry [MQTT-4.7.3-3].</summary>
    TooLong,

    /// <summary>Contains U+0000 [MQTT-4.7.3-2].</summary>
    ContainsNull,

    /// <summary>A topic name containing '+' or '#' [MQTT-4.7.1-1] (3.1.1), [MQTT-4.7.0-1] (5.0), [MQTT-3.3.2-2].</summary>
    WildcardInName,

    /// <summary>'#' not the whole last level, e.g. "sport/tennis#" or "sport/#/ranking" [MQTT-4.7.1-2].</summary>
    MisplacedMultiLevelWildcard,

    /// <summary>'+' not a whole level, e.g. "sport+" [MQTT-4.7.1-3].</summary>
    MisplacedSingleLevelWildcard,

    /// <summary>"$share/{ShareName}/{filter}" with an empty or wildcarded ShareName or no filter [MQTT-4.8.2-1, 4.8.2-2].</summary>
    InvalidSharedSubscription,
}

/// <summary>
/// The topic rules of MQTT 3.1.1 and 5.0 section 4.7 (topic names and filters) and 5.0 section 4.8.2
/// (shared subscriptions): validation and the reference matcher.
/// </summary>
/// <remarks>
/// <para>
/// Topics are split into levels on '/'. Levels may be empty: "/finance" has two levels, "" and "finance";
/// "sport/" has "sport" and "". '+' matches exactly one level (which may be empty); '#' matches the parent
/// level and any number of child levels, so "sport/#" matches "sport" [MQTT-4.7.1-2]. A filter starting with a
/// wildcard does not match a topic name starting with '$' [MQTT-4.7.2-1].
/// </para>
/// <para>
/// <see cref="Matches(ReadOnlySpan{char}, ReadOnlySpan{char})"/> is the reference: the trie in Broker.Routing is
/// property-tested against it. It treats a shared filter literally; strip "$share/{group}/" with
/// <see cref="TryParseShared"/> first. It assumes valid input (see <see cref="ValidateTopicFilter"/>).
/// </para>
/// </remarks>
public static class MqttTopic
{
    public const char LevelSeparator = '/';
    public const char SingleLevelWildcard = '+';
    public const char MultiLevelWildcard = '#';
    public const string SharedPrefix = "$share/";

    /// <summary>The largest UTF-8 Encoded String, MQTT-v5.0 1.5.4.</summary>
    public const int MaxLengthInBytes = 65_535;

    // ---------------------------------------------------------------- names

    /// <summary>Validates a PUBLISH / Will topic name.</summary>
    public static TopicValidation ValidateTopicName(string topic)
    {
        var common = ValidateCommon(topic);
        if (common != TopicValidation.Valid)
            return common;
        // "The wildcard characters can be used in Topic Filters, but MUST NOT be used within a Topic Name"
        // [MQTT-4.7.1-1] in 3.1.1, [MQTT-4.7.0-1] in 5.0
        return topic.AsSpan().IndexOfAny(SingleLevelWildcard, MultiLevelWildcard) >= 0
            ? TopicValidation.WildcardInName
            : TopicValidation.Valid;
    }

    public static bool IsValidTopicName(string topic) => ValidateTopicName(topic) == TopicValidation.Valid;

    // ---------------------------------------------------------------- filters

    /// <summary>Validates a SUBSCRIBE / UNSUBSCRIBE topic filter, including "$share/{ShareName}/{filter}".</summary>
    public static TopicValidation ValidateTopicFilter(string filter)
    {
        var common = ValidateCommon(filter);
        if (common != TopicValidation.Valid)
            return common;

        var span = filter.AsSpan();
        if (span.StartsWith(SharedPrefix, StringComparison.Ordinal))
        {
            if (!TrySplitShared(span, out _, out var inner))
                return TopicValidation.InvalidSharedSubscription;
            return ValidateWildcards(inner);
        }

        return ValidateWildcards(span);
    }

    public static bool IsValidTopicFilter(string filter) => ValidateTopicFilter(filter) == TopicValidation.Valid;

    /// <summary>
    /// Splits "$share/{ShareName}/{filter}" [MQTT-4.8.2]. Returns false when <paramref name="filter"/> is not a
    /// shared subscription or its ShareName or inner filter is empty, or the ShareName holds '+' or '#'.
    /// The inner filter's wildcards are not checked here; <see cref="ValidateTopicFilter"/> does that.
    /// </summary>
    public static bool TryParseShared(string filter, out string group, out string innerFilter)
    {
        if (TrySplitShared(filter.AsSpan(), out var g, out var inner))
        {
            group = g.ToString();
            innerFilter = inner.ToString();
            return true;
        }

        group = string.Empty;
        innerFilter = string.Empty;
        return false;
    }

    /// <summary>True when the filter contains '+' or '#' anywhere (validate first to know they are whole levels).</summary>
    public static bool HasWildcards(string filter) =>
        filter.AsSpan().IndexOfAny(SingleLevelWildcard, MultiLevelWildcard) >= 0;

    // ---------------------------------------------------------------- matching

    /// <summary>The reference matcher: does topic name <paramref name="topic"/> match <paramref name="filter"/>?</summary>
    public static bool Matches(string filter, string topic) => Matches(filter.AsSpan(), topic.AsSpan());

    /// <summary>
    /// Level-by-level comparison, no allocation. Each filter level consumes exactly one topic level, except '#',
    /// which consumes the rest (including none: "sport/#" matches "sport").
    /// </summary>
    public static bool Matches(ReadOnlySpan<char> filter, ReadOnlySpan<char> topic)
    {
        // "The Server MUST NOT match Topic Filters starting with a wildcard character (# or +)
        //  with Topic Names beginning with a $ character" [MQTT-4.7.2-1]
        if (!topic.IsEmpty && topic[0] == '$' && !filter.IsEmpty &&
            (filter[0] == SingleLevelWildcard || filter[0] == MultiLevelWildcard))
            return false;

        while (true)
        {
            var fSlash = filter.IndexOf(LevelSeparator);
            var fLevel = fSlash < 0 ? filter : filter[..fSlash];
            if (IsMultiLevel(fLevel))
                return true;

            var tSlash = topic.IndexOf(LevelSeparator);
            var tLevel = tSlash < 0 ? topic : topic[..tSlash];
            if (!IsSingleLevel(fLevel) && !fLevel.SequenceEqual(tLevel))
                return false;

            if (fSlash < 0)
                return tSlash < 0; // filter used up: the topic must be too ("sport/+" does not match "sport/a/b")
            if (tSlash < 0)
                return IsMultiLevel(filter[(fSlash + 1)..]); // topic used up: only a trailing "#" (parent match) remains

            filter = filter[(fSlash + 1)..];
            topic = topic[(tSlash + 1)..];
        }
    }

    internal static bool IsSingleLevel(ReadOnlySpan<char> level) => level.Length == 1 && level[0] == SingleLevelWildcard;

    internal static bool IsMultiLevel(ReadOnlySpan<char> level) => level.Length == 1 && level[0] == MultiLevelWildcard;

    // ---------------------------------------------------------------- helpers

    private static TopicValidation ValidateCommon(string value)
    {
        if (string.IsNullOrEmpty(value))
            return TopicValidation.Empty; // [MQTT-4.7.3-1]

        // A char is at most 3 UTF-8 bytes (a surrogate pair is 4 bytes for 2 chars), so only count when it could matter.
        if (value.Length > MaxLengthInBytes / 3 && Encoding.UTF8.GetByteCount(value) > MaxLengthInBytes)
            return TopicValidation.TooLong; // [MQTT-4.7.3-3]

        return value.Contains('\0') ? TopicValidation.ContainsNull : TopicValidation.Valid; // [MQTT-4.7.3-2]
    }

    private static TopicValidation ValidateWildcards(ReadOnlySpan<char> filter)
    {
        while (true)
        {
            var slash = filter.IndexOf(LevelSeparator);
            var level = slash < 0 ? filter : filter[..slash];

            if (level.Contains(MultiLevelWildcard))
            {
                // "#" MUST be specified either on its own or following a topic level separator, and MUST be
                // the last character of the Topic Filter [MQTT-4.7.1-2]
                if (level.Length != 1 || slash >= 0)
                    return TopicValidation.MisplacedMultiLevelWildcard;
            }
            else if (level.Contains(SingleLevelWildcard) && level.Length != 1)
            {
                // "+" MUST occupy an entire level of the filter [MQTT-4.7.1-3]
                return TopicValidation.MisplacedSingleLevelWildcard;
            }

            if (slash < 0)
                return TopicValidation.Valid;
            filter = filter[(slash + 1)..];
        }
    }

    /// <summary>
    /// "$share/{ShareName}/{filter}": "A Shared Subscription's Topic Filter MUST start with $share/ and MUST contain a
    /// ShareName that is at least one character long" [MQTT-4.8.2-1]; "The ShareName MUST NOT contain the characters
    /// '/', '+' or '#', but MUST be followed by a '/' character. This '/' character MUST be followed by a Topic
    /// Filter" [MQTT-4.8.2-2].
    /// </summary>
    private static bool TrySplitShared(ReadOnlySpan<char> filter, out ReadOnlySpan<char> group, out ReadOnlySpan<char> inner)
    {
        group = default;
        inner = default;
        if (!filter.StartsWith(SharedPrefix, StringComparison.Ordinal))
            return false;

        var rest = filter[SharedPrefix.Length..];
        var slash = rest.IndexOf(LevelSeparator);
        if (slash <= 0)
            return false; // "$share/" , "$share/group" (no filter) or "$share//x" (empty ShareName)

        group = rest[..slash];
        inner = rest[(slash + 1)..];
        return !inner.IsEmpty && group.IndexOfAny(SingleLevelWildcard, MultiLevelWildcard) < 0;
    }
}
