using FsCheck;
using FsCheck.Fluent;

namespace Broker.Tests.Routing;

/// <summary>One step of a property scenario: add or remove (topic or filter, key).</summary>
public readonly record struct TopicOp(bool IsAdd, string Topic, int Key)
{
    public override string ToString() => $"{(IsAdd ? "+" : "-")}({Topic},{Key})";
}

/// <summary>Interleaved adds/removes followed by a set of probes (topics for the trie, filters for the index).</summary>
public sealed record TopicScenario(TopicOp[] Ops, string[] Probes)
{
    public override string ToString() =>
        $"ops=[{string.Join(" ", Ops)}] probes=[{string.Join(" ", Probes.Select(p => $"'{p}'"))}]";
}

/// <summary>
/// Small alphabets so that collisions (shared prefixes, same filter twice, remove of an absent entry) are frequent:
/// levels "a", "b", "" (empty level) and "$x" / "$" (the [MQTT-4.7.2-1] rule bites only when they come first).
/// </summary>
public static class TopicGenerators
{
    private static readonly Gen<string> NameLevel = Gen.Elements("a", "b", "", "$x", "$");
    private static readonly Gen<string> FilterLevel = Gen.Elements("a", "b", "", "$x", "+", "+");

    /// <summary>1 to 4 levels of names: "a", "/", "$x/a/", ...</summary>
    public static readonly Gen<string> TopicName =
        from n in Gen.Choose(1, 4)
        from levels in Gen.ArrayOf(NameLevel, n)
        select string.Join("/", levels) into name
        where name.Length > 0 // "" is not a topic [MQTT-4.7.3-1]
        select name;

    /// <summary>Valid filters: 1 to 4 levels of literal or '+', optionally ending in '#'; or "#" alone.</summary>
    public static readonly Gen<string> TopicFilter =
        Gen.Frequency(
            (1, Gen.Constant("#")),
            (9, from n in Gen.Choose(1, 4)
                from levels in Gen.ArrayOf(FilterLevel, n)
                from hash in Gen.Elements(false, false, true)
                select string.Join("/", levels) + (hash ? "/#" : "") into filter
                where filter.Length > 0 // "" is not a filter [MQTT-4.7.3-1]
                select filter));

    private static Gen<TopicOp> Op(Gen<string> topic) =>
        from isAdd in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
        from t in topic
        from key in Gen.Choose(0, 2)
        select new TopicOp(isAdd, t, key);

    private static Gen<TopicScenario> Scenario(Gen<string> stored, Gen<string> probe) =>
        from nOps in Gen.Choose(0, 40)
        from ops in Gen.ArrayOf(Op(stored), nOps)
        from nProbes in Gen.Choose(1, 8)
        from probes in Gen.ArrayOf(probe, nProbes)
        select new TopicScenario(ops, probes);

    /// <summary>Filters stored in a trie, probed with topic names.</summary>
    public static Arbitrary<TopicScenario> TrieScenario() => Scenario(TopicFilter, TopicName).ToArbitrary();
}

/// <summary>Filters probed against stored names, for <see cref="Broker.Routing.TopicNameIndex"/>.</summary>
public static class NameIndexGenerators
{
    public static Arbitrary<TopicScenario> IndexScenario() =>
        (from nOps in Gen.Choose(0, 40)
         from ops in Gen.ArrayOf(
             from isAdd in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
             from t in TopicGenerators.TopicName
             select new TopicOp(isAdd, t, 0), nOps)
         from nProbes in Gen.Choose(1, 8)
         from probes in Gen.ArrayOf(TopicGenerators.TopicFilter, nProbes)
         select new TopicScenario(ops, probes)).ToArbitrary();
}
