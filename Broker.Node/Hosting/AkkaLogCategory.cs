namespace Broker.Node.Hosting;

/// <summary>
/// The logging category of an Akka.NET log event, and which of Akka's messages a newcomer needs to see.
/// <para>
/// Akka logs from a class (its type is the category: <c>Akka.Cluster.Sharding.ShardRegion</c>) or from a string
/// source (<c>"Cluster (akka://broker)"</c>, <c>"remoting (akka://broker)"</c>), for which its event carries the
/// placeholder type <c>DummyClassForStringSources</c>; such a source becomes <c>Akka.Cluster</c>,
/// <c>Akka.Remote.Remoting</c>, ... instead. Akka's chatter is kept at Warning by default (Program.cs), except
/// membership changes (a node joining, up, unreachable, reachable again, leaving, removed, downed), which are logged
/// under <see cref="Membership"/> at Information. Pure: no logger, no actor system.
/// </para>
/// </summary>
public static class AkkaLogCategory
{
    /// <summary>The category of cluster membership changes (on at Information by default).</summary>
    public const string Membership = "Akka.Cluster.Membership";

    private static readonly Dictionary<string, string> KnownSources = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Cluster"] = "Akka.Cluster",
        ["remoting"] = "Akka.Remote.Remoting",
        ["remoting-terminator"] = "Akka.Remote.RemotingTerminator",
        ["CoordinatedShutdown"] = "Akka.Actor.CoordinatedShutdown",
    };

    // Akka.Cluster's own texts (ClusterCoreDaemon, ClusterCoreSupervisor) for the steps of a member's life.
    private static readonly string[] MembershipTexts =
    [
        "is JOINING", "Leader is moving node", "Leader is removing", "Marking node(s) as UNREACHABLE", "Marking node(s) as REACHABLE",
        "Marking exiting node(s) as UNREACHABLE", "Welcome from", "Exiting completed", "Shutting down myself", "Marked address",
        "Shutting down...", "is the new leader", "Node has been marked as DOWN", "Downing",
    ];

    /// <summary>The category for an event from <paramref name="logClass"/> (null or Akka's placeholder for string sources) and <paramref name="logSource"/>.</summary>
    public static string Of(Type? logClass, string? logSource)
    {
        if (logClass is not null && logClass.Name != "DummyClassForStringSources")
        {
            return logClass.FullName ?? logClass.Name;
        }

        var source = (logSource ?? "").Trim();
        var paren = source.IndexOf(" (", StringComparison.Ordinal);
        if (paren > 0)
        {
            source = source[..paren]; // "Cluster (akka://broker)" -> "Cluster"
        }

        if (source.Length == 0)
        {
            return "Akka";
        }

        if (KnownSources.TryGetValue(source, out var known))
        {
            return known;
        }

        // An actor path or another free-form source: keep its name, in characters a category may use.
        var name = new string(source.Select(c => char.IsLetterOrDigit(c) || c == '.' ? c : '.').ToArray()).Trim('.');
        while (name.Contains("..", StringComparison.Ordinal))
        {
            name = name.Replace("..", ".", StringComparison.Ordinal);
        }

        return name.StartsWith("Akka.", StringComparison.Ordinal) ? name : "Akka." + name;
    }

    /// <summary>True when <paramref name="text"/> (a formatted Akka.Cluster message) reports a change of membership.</summary>
    public static bool IsMembershipChange(string category, string text) =>
        category.StartsWith("Akka.Cluster", StringComparison.Ordinal)
        && MembershipTexts.Any(t => text.Contains(t, StringComparison.Ordinal));
}
