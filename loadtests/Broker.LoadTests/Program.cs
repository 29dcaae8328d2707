using Broker.LoadTests;
using Broker.LoadTests.Reports;
using Broker.LoadTests.Runner;
using Broker.LoadTests.Scenarios;
using Broker.Protocol;

// The load-test runner (see RunOptions.Usage and README "Load tests"). Exit codes: 0 passed, 1 error or bad
// arguments, 2 a threshold failed. The two quick probes of the first measurements stay, by their positional form:
//   Broker.LoadTests fanin <port> [publishers] [messagesPerPublisher] [qos]
//   Broker.LoadTests durable <port> [subscribers] [messages] [window] [qos: 1 (default) or 2] [payloadBytes: 64]
//   Broker.LoadTests journal-limit sqlite:<file>|postgres:<connection string> [rows] [batch] [writers] [bytes]  (JournalInsertLimit)
//   Broker.LoadTests stored-sessions <stored> [resumes] [concurrency] [postgres connection string]  (StoredSessionsProbe)
//   Broker.LoadTests stored-sessions-resume <port,port,...> <stored> <resumes> [concurrency]  (running nodes, seeded ids)
int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
if (args is ["durable", var durablePort, ..] && int.TryParse(durablePort, out _))
{
    return await DurableScenario.RunAsync("127.0.0.1", Arg(1, 1883), Arg(2, 1), Arg(3, 10_000), Arg(4, 100), TimeSpan.FromSeconds(120), (MqttQoS)Arg(5, 1), Arg(6, 64));
}

if (args is ["stored-sessions-seed", var seedDir, var seedCount, ..])
{
    // Broker.LoadTests stored-sessions-seed <data dir> <count> [postgres connection string]: writes stored sessions for a stopped node
    var seedOptions = new Broker.Configuration.BrokerOptions
    {
        Node = new Broker.Configuration.NodeOptions { DataDir = seedDir },
        Storage = args.Length > 3
            ? new Broker.Configuration.StorageOptions { Provider = "postgresql", ConnectionString = args[3] }
            : new Broker.Configuration.StorageOptions(),
    };
    await StoredSessionSeeder.SeedAsync(seedOptions, 0, int.Parse(seedCount, System.Globalization.CultureInfo.InvariantCulture),
        i => $"dev-{i}", i => i % 2 == 0 ? $"dev/{i}/cmd" : $"dev/{i}/+/set", 7 * 24 * 3600);
    return 0;
}

if (args is ["stored-sessions", ..])
{
    // Broker.LoadTests stored-sessions <stored> [resumes] [concurrency] [postgres connection string]
    return await StoredSessionsProbe.RunAsync(Arg(1, 20_000), Arg(2, 20_000), Arg(3, 64), args.Length > 4 ? args[4] : null);
}

if (args is ["stored-sessions-resume", var resumePorts, var resumeStored, var resumeCount, ..])
{
    // Resumes seeded sessions (stored-sessions-seed) on running nodes, each client on the next port in turn.
    var ports = resumePorts.Split(',').Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    return await StoredSessionsProbe.ResumeOnNodesAsync(ports, int.Parse(resumeStored, System.Globalization.CultureInfo.InvariantCulture),
        int.Parse(resumeCount, System.Globalization.CultureInfo.InvariantCulture), Arg(4, 64));
}

if (args is ["journal-limit", var journalTarget, ..])
{
    // Broker.LoadTests journal-limit sqlite:<file>|postgres:<connection string> [rows] [batch] [writers] [messageBytes]
    return await JournalInsertLimit.RunAsync(journalTarget, Arg(2, 200_000), Arg(3, 200), Arg(4, 1), Arg(5, 120));
}

if (args is ["fanin", ..])
{
    return await ThroughputScenario.RunAsync("127.0.0.1", Arg(1, 1883), Arg(2, 10), Arg(3, 10_000), (MqttQoS)Arg(4, 0), 64, TimeSpan.FromSeconds(120));
}

if (args is [] or ["help" or "--help" or "-h", ..])
{
    Console.WriteLine(RunOptions.Usage);
    return args.Length == 0 ? 1 : 0;
}

if (args is ["list", ..])
{
    foreach (var (name, summary) in ScenarioCatalog.All)
    {
        Console.WriteLine($"{name,-20} {summary}");
    }

    return 0;
}

RunOptions options;
try
{
    options = RunOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine(RunOptions.Usage);
    return 1;
}

return await LoadRunner.RunAsync(options, "Broker.LoadTests " + string.Join(' ', args), Console.Out);
