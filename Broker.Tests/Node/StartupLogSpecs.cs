using Broker.Tests.Durability;

namespace Broker.Tests.Node;

/// <summary>
/// What a newcomer reads in a real Broker.Node process's console: one line per event; first the listening address,
/// storage, cluster and security; Akka's chatter hidden at Information except membership changes; Akka's events
/// under their own source as the category, never Akka's placeholder type.
/// </summary>
public sealed class StartupLogSpecs : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("broker-startup-log-").FullName;

    [Fact]
    public async Task The_first_lines_say_address_storage_cluster_and_security_and_Akka_chatter_stays_out()
    {
        using var node = await BrokerNodeProcess.StartAsync($"--Node:DataDir={_dir}/a");
        var lines = node.Process.StdoutLines.ToList();
        var ready = lines.FindIndex(l => l.Contains("Broker ready: MQTT listening on", StringComparison.Ordinal));
        var startup = lines.Take(ready + 1).ToList();

        // Every event is one line with its timestamp (the console's legacy format put the message on a second line).
        Assert.All(startup, l => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (info|warn|fail|crit|dbug|trce): ", l));
        Assert.Contains($"Broker starting: MQTT on 127.0.0.1:{node.MqttPort}; storage: sqlite file {_dir}/a/broker.db; cluster node 127.0.0.1:",
            startup[0], StringComparison.Ordinal);
        Assert.Contains(startup, l => l.Contains("Broker.BrokerServer[0] Security: anonymous clients", StringComparison.Ordinal));
        Assert.Contains(startup, l => l.Contains("Akka.Cluster.Membership[0]", StringComparison.Ordinal) && l.Contains("to [Up]", StringComparison.Ordinal));

        // Nothing else from Akka at Information, and never the placeholder category.
        Assert.DoesNotContain(lines, l => l.Contains("DummyClassForStringSources", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains(" info: Akka.", StringComparison.Ordinal) && !l.Contains("Akka.Cluster.Membership", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Microsoft.Hosting.Lifetime", StringComparison.Ordinal));
        Assert.True(startup.Count <= 10, "start-up took more than 10 lines:\n" + string.Join('\n', startup));
    }

    [Fact]
    public async Task Akka_at_Information_on_request_shows_each_event_under_its_source()
    {
        using var node = await BrokerNodeProcess.StartAsync($"--Node:DataDir={_dir}/b", "--Logging:LogLevel:Akka=Information");
        var lines = node.Process.StdoutLines.ToList();
        Assert.Contains(lines, l => l.Contains("info: Akka.Remote.Remoting[0] Remoting started", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("info: Akka.Cluster[0] Cluster Node", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("DummyClassForStringSources", StringComparison.Ordinal));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
