using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Broker.Configuration;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.LoadTests;

/// <summary>
/// Sessions at scale, measured on one node hosted in this process (so that its managed heap can be read exactly):
/// <list type="number">
/// <item>the managed heap of a node with no stored session;</item>
/// <item>N stored offline persistent sessions (each with one QoS 1 subscription, half exact, half wildcard) written
/// by <see cref="StoredSessionSeeder"/>; the time the node takes to be ready, and its heap at rest;</item>
/// <item>K of them resume (CONNECT, Clean Start 0, session present) and leave (DISCONNECT) from C concurrent clients:
/// resumes per second; the heap while they are offline but still in memory; and once they have passivated again.</item>
/// </list>
/// Usage: <c>Broker.LoadTests stored-sessions &lt;N&gt; [K] [C] [postgres connection string]</c>. Only 127.0.0.1.
/// </summary>
public static class StoredSessionsProbe
{
    private const int PassivateAfterSeconds = 5;

    public static async Task<int> RunAsync(int count, int resumes, int concurrency, string? postgres)
    {
        var dir = Path.Combine(Path.GetTempPath(), "stored-sessions-" + Guid.NewGuid().ToString("N"));
        var options = new BrokerOptions
        {
            Mqtt = new MqttOptions { Address = "127.0.0.1", Port = 0, MaxConnections = 1_000_000 },
            Cluster = new ClusterOptions { Hostname = "127.0.0.1", Port = 0 },
            Node = new NodeOptions { DataDir = dir },
            // PASSIVATED_STATE_BYTES (environment): Sessions:PassivatedStateBytes, for comparisons (0: recover from storage).
            Sessions = new SessionOptions
            {
                PassivateAfterSeconds = PassivateAfterSeconds,
                PassivatedStateBytes = int.TryParse(Environment.GetEnvironmentVariable("PASSIVATED_STATE_BYTES"), out var kept) ? kept : new SessionOptions().PassivatedStateBytes,
            },
            // READ_SESSIONS_IN_BATCHES=false (environment): Storage:ReadSessionsInBatches off, for comparisons.
            Storage = (postgres is null ? new StorageOptions() : new StorageOptions { Provider = "postgresql", ConnectionString = postgres }) with
            {
                ReadSessionsInBatches = Environment.GetEnvironmentVariable("READ_SESSIONS_IN_BATCHES") != "false",
            },
        };
        static string IdOf(int i) => $"dev-{i}";
        static string FilterOf(int i) => i % 2 == 0 ? $"dev/{i}/cmd" : $"dev/{i}/+/set";
        try
        {
            Console.WriteLine($"storage: {Persistence.StorageSetup.Describe(options)}");
            long emptyHeap;
            await using (var empty = await BrokerServer.StartAsync(options))
            {
                emptyHeap = Heap();
                Console.WriteLine($"empty node: heap {Mb(emptyHeap)}, RSS {Mb(Rss())}");
            }

            var seeding = Stopwatch.StartNew();
            await StoredSessionSeeder.SeedAsync(options, 0, count, IdOf, FilterOf, 7 * 24 * 3600);
            Console.WriteLine($"seeded {count} stored sessions in {seeding.Elapsed.TotalSeconds:F1} s");

            var starting = Stopwatch.StartNew();
            await using var server = await BrokerServer.StartAsync(options);
            var ready = starting.Elapsed;
            var restHeap = Heap();
            Console.WriteLine($"ready after {ready.TotalSeconds:F2} s with {count} stored sessions; " +
                $"heap {Mb(restHeap)} (+{(restHeap - emptyHeap) / (double)count:F0} B per stored session), RSS {Mb(Rss())}, " +
                $"session entities in memory: {await InMemoryAsync(server)}");

            resumes = Math.Min(resumes, count);
            var port = server.MqttEndPoint.Port;
            var (firstPresent, _) = await ResumeAsync(port, 0, resumes / 2, resumes, count, concurrency);
            await WaitPassivatedAsync(server);
            var afterFirst = Heap();
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var (present, took) = await ResumeAsync(port, resumes / 2, resumes, resumes, count, concurrency);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
            var half = resumes - (resumes / 2);
            Console.WriteLine($"resumed {present} of {half} sessions (session present) from {concurrency} clients in " +
                $"{took.TotalSeconds:F1} s: {present / took.TotalSeconds:F0} resumes/s (each CONNECT to CONNACK, then DISCONNECT); " +
                $"CPU {cpu.TotalMilliseconds / Math.Max(1, half):F2} ms per resume ({cpu.TotalSeconds / took.TotalSeconds:F2} cores; broker and clients, both in this process)");

            await Task.Delay(TimeSpan.FromSeconds(1));
            var awakeHeap = Heap();
            var awake = await InMemoryAsync(server);
            Console.WriteLine($"offline, before passivation: {awake} session entities in memory, heap {Mb(awakeHeap)} " +
                $"(+{(awakeHeap - afterFirst) / (double)Math.Max(1, awake):F0} B per offline session in memory)");

            var left = await WaitPassivatedAsync(server);
            var passivatedHeap = Heap();
            Console.WriteLine($"after passivation ({left} left in memory): heap {Mb(passivatedHeap)}: " +
                $"{(passivatedHeap - afterFirst) / (double)half:F0} B per passivated session (second round over the first); " +
                $"{(passivatedHeap - restHeap) / (double)resumes:F0} B per resumed session over the node at rest (with one-time growth); RSS {Mb(Rss())}");
            present += firstPresent;
            return present == resumes ? 0 : 2;
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static Task<(int Present, TimeSpan Took)> ResumeAsync(int port, int from, int to, int resumes, int count, int concurrency) =>
        ResumeAsync([port], from, to, resumes, count, concurrency);

    private static async Task<(int Present, TimeSpan Took)> ResumeAsync(int[] ports, int from, int to, int resumes, int count, int concurrency)
    {
        var next = from - 1;
        var present = 0;
        var refused = 0;
        var resuming = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < to)
            {
                var id = $"dev-{(int)((long)i * count / resumes)}";
                RawMqttConnection c;
                try
                {
                    c = await RawMqttConnection.ConnectAsync("127.0.0.1", ports[i % ports.Length], id, MqttProtocolVersion.V500,
                        cleanStart: false, sessionExpiry: 7 * 24 * 3600);
                }
                catch (InvalidOperationException)
                {
                    Interlocked.Increment(ref refused); // CONNACK 0x88: the session did not answer in time
                    continue;
                }

                await using (c)
                {
                    if (c.SessionPresent)
                    {
                        Interlocked.Increment(ref present);
                    }
                    else
                    {
                        Console.WriteLine($"{id}: resumed without its session (session present 0) on port {ports[i % ports.Length]}");
                    }

                    await c.SendAsync(new MqttDisconnectPacket());
                }
            }
        }));
        if (refused > 0)
        {
            Console.WriteLine($"{refused} resumes refused (CONNACK 0x88)");
        }

        return (present, resuming.Elapsed);
    }

    /// <summary>
    /// K resumes of stored sessions (written by <c>stored-sessions-seed</c> before the nodes started) on running
    /// nodes, from C concurrent clients, client i on node i mod n; prints resumes per second in all and per node.
    /// </summary>
    public static async Task<int> ResumeOnNodesAsync(int[] ports, int count, int resumes, int concurrency)
    {
        resumes = Math.Min(resumes, count);
        var (present, took) = await ResumeAsync(ports, 0, resumes, resumes, count, concurrency);
        var rate = present / took.TotalSeconds;
        Console.WriteLine($"resumed {present} of {resumes} sessions (session present) on {ports.Length} node(s) from {concurrency} clients in " +
            $"{took.TotalSeconds:F1} s: {rate:F0} resumes/s, {rate / ports.Length:F0} per node (each CONNECT to CONNACK, then DISCONNECT)");
        return present == resumes ? 0 : 2;
    }

    private static async Task<int> WaitPassivatedAsync(BrokerServer server)
    {
        var waiting = Stopwatch.StartNew();
        int left;
        while ((left = await InMemoryAsync(server)) > 0 && waiting.Elapsed < TimeSpan.FromSeconds(120))
        {
            await Task.Delay(1000);
        }

        return left;
    }

    private static async Task<int> InMemoryAsync(BrokerServer server)
    {
        var state = await server.Context.SessionRegion.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(30));
        return state.Shards.Sum(s => s.EntityIds.Count);
    }

    private static long Heap()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static long Rss() => Process.GetCurrentProcess().WorkingSet64;

    private static string Mb(long bytes) => $"{bytes / 1048576.0:F1} MB";
}
