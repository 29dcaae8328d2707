using Akka.Actor;
using Broker.Configuration;

namespace Broker.Cluster;

/// <summary>
/// Keeps the first seed node from forming a cluster of its own beside a running one. Akka lets the first node of the
/// seed list join itself when it reaches no other seed within seed-node-timeout: right when a cluster starts for the
/// first time, wrong when that node is restarted while it is cut off from the others, which still run. It would then
/// serve as a one-node cluster (a client connecting to it could hold a session there while the same session lives in
/// the main cluster, on the same journal) until <see cref="StrayClusterDetector"/> saw the other cluster after the heal.
/// With PostgreSQL storage every Up member marks its presence session " up" (<see cref="NodePresence"/>); before the
/// actor system starts, a first seed that finds another seed marked so moves itself to the end of its seed list, so it
/// only joins (Akka never lets a node that is not first in the list join itself) and waits for the others as any other
/// node does. When no other seed is Up (the whole cluster starts) or the database cannot tell, nothing changes.
/// </summary>
public static class FirstSeed
{
    /// <summary>The options to start with, and why the seed list was changed (null when it was not).</summary>
    public static async Task<(BrokerOptions Options, string? Why)> GuardAsync(BrokerOptions options, CancellationToken ct)
    {
        var seeds = options.Cluster.SeedNodes;
        if (seeds.Count < 2 || Persistence.StorageSetup.IsSqlite(options) || !IsSelf(seeds[0], options))
        {
            return (options, null);
        }

        var others = seeds.Skip(1).Select(Address.Parse).ToList();
        var up = await NodePresence.UpNodesAsync(options.Storage.ConnectionString, others, TimeSpan.FromSeconds(5)).WaitAsync(ct)
            .ConfigureAwait(false);
        if (up is not { Count: > 0 })
        {
            return (options, null);
        }

        var reordered = options with { Cluster = options.Cluster with { SeedNodes = [.. seeds.Skip(1), seeds[0]] } };
        return (reordered, $"seed node(s) {string.Join(", ", up)} are Up members of a running cluster (their database sessions say so): " +
            "this first seed node joins it and does not form a cluster of its own");
    }

    private static bool IsSelf(string seed, BrokerOptions options)
    {
        try
        {
            var address = Address.Parse(seed);
            return address.Port == options.Cluster.Port && string.Equals(address.Host, options.Cluster.Hostname, StringComparison.OrdinalIgnoreCase);
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            return false;
        }
    }
}
