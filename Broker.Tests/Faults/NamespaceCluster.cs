using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Broker.Tests.Durability;
using Broker.Tests.Interop;

namespace Broker.Tests.Faults;

/// <summary>
/// Broker.Node processes, each in its own network namespace of a <see cref="NetworkLab"/>, on one PostgreSQL in the
/// root namespace; every node lists every node as a seed (node 1 first), serves MQTT on 1883, remoting on 4053 and
/// operations HTTP (health, management API) on 9100 of its own address. Each node runs under a supervisor loop that,
/// like systemd's Restart=always, starts it again a second after it exits (unless the test holds it down), and notes
/// every start and exit on the run clock. Dispose kills the nodes (by PID), stops PostgreSQL, removes the lab.
/// </summary>
public sealed class NamespaceCluster : IAsyncDisposable
{
    public const int MqttPort = 1883;
    public const string Token = "fault-injection-token-0123456789";
    private const int ClusterPort = 4053;
    private const int HttpPort = 9100;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly Slot[] _slots;
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-faults-").FullName;
    private readonly CancellationTokenSource _disposed = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(3) };
    private PostgresServer? _postgres;
    private string _connectionString = "";

    private NamespaceCluster(NetworkLab lab, int nodes)
    {
        Lab = lab;
        _slots = Enumerable.Range(1, nodes).Select(n => new Slot(n)).ToArray();
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
    }

    public NetworkLab Lab { get; }

    public int Count => _slots.Length;

    public int PostgresPort => _postgres!.Port;

    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    public IReadOnlyList<IPEndPoint> MqttEndPoints => _slots.Select(s => new IPEndPoint(Lab.Address(s.Node), MqttPort)).ToList();

    public static async Task<NamespaceCluster> StartAsync(int nodes, params string[] extraArgs)
    {
        var lab = await NetworkLab.CreateAsync(nodes);
        var cluster = new NamespaceCluster(lab, nodes);
        try
        {
            cluster._postgres = PostgresServer.Listening(lab.HostAddress.ToString(), lab.Cidr);
            await cluster._postgres.InitializeAsync();
            cluster._connectionString = await cluster._postgres.CreateDatabaseAsync("faults");
            cluster._extraArgs = extraArgs;
            await cluster.StartNodeAsync(1);
            await Task.WhenAll(Enumerable.Range(2, nodes - 1).Select(cluster.StartNodeAsync));
            foreach (var slot in cluster._slots)
            {
                slot.Supervisor = Task.Run(() => cluster.SuperviseAsync(slot));
            }

            await cluster.WaitHealthyAsync(TimeSpan.FromSeconds(60));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private string[] _extraArgs = [];

    /// <summary>
    /// Flags given to every node from BROKER_FAULT_NODE_ARGS (space-separated), to compare a setting with its default:
    /// e.g. <c>--Storage:LeaveAfter=0</c>.
    /// </summary>
    public static string[] ExtraNodeArgs() =>
        (Environment.GetEnvironmentVariable("BROKER_FAULT_NODE_ARGS") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Starts and exits of every node on the run clock ("+12.3 s node 3 exited with 3").</summary>
    public IReadOnlyList<string> Events
    {
        get
        {
            lock (_slots)
            {
                return _slots.SelectMany(s => s.Events).OrderBy(e => e.AtMs).Select(e => $"+{e.AtMs / 1000.0:F1} s node {e.Node} {e.What}").ToList();
            }
        }
    }

    /// <summary>Events of node <paramref name="node"/> from run-clock millisecond <paramref name="sinceMs"/> on.</summary>
    public IReadOnlyList<(long AtMs, string What)> EventsOf(int node, long sinceMs)
    {
        lock (_slots)
        {
            return _slots[node - 1].Events.Where(e => e.AtMs >= sinceMs).Select(e => (e.AtMs, e.What)).ToList();
        }
    }

    public ExternalProcess? Process(int node) => _slots[node - 1].Current;

    /// <summary>SIGKILL node <paramref name="node"/>; the supervisor starts it again once <see cref="Release"/> is called.</summary>
    public async Task KillAndHoldAsync(int node)
    {
        var slot = _slots[node - 1];
        slot.Held = true;
        if (slot.Current is { HasExited: false } process)
        {
            Note(slot, "killed with SIGKILL");
            await process.KillHardAsync(TimeSpan.FromSeconds(15));
        }
    }

    public void Release(int node) => _slots[node - 1].Held = false;

    public void Pause(int node)
    {
        Note(_slots[node - 1], "paused (SIGSTOP)");
        _slots[node - 1].Current?.Pause();
    }

    public void Resume(int node)
    {
        try
        {
            _slots[node - 1].Current?.Resume();
        }
        catch (InvalidOperationException)
        {
            return; // it is gone (exited): nothing to resume
        }

        Note(_slots[node - 1], "resumed (SIGCONT)");
    }

    /// <summary>Waits until every node runs, is ready, and sees all nodes Up and reachable.</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var states = await Task.WhenAll(_slots.Select(s => HealthOfAsync(s.Node)));
            if (states.All(s => s == "ok"))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"cluster not healthy within {timeout.TotalSeconds} s: {string.Join("; ", states)}\n" +
                    string.Join('\n', Events));
            }

            await Task.Delay(250);
        }
    }

    /// <summary>Client ids connected to node <paramref name="node"/> by its own registry, or null when it does not answer.</summary>
    public async Task<List<string>?> ClientsOfAsync(int node)
    {
        var json = await GetJsonAsync(node, "/api/clients");
        if (json is null)
        {
            return null;
        }

        using (json)
        {
            var self = $"{Lab.Address(node)}:{ClusterPort}";
            return json.RootElement.GetProperty("clients").EnumerateArray()
                .Where(c => c.TryGetProperty("node", out var at) && (at.GetString() ?? "").Contains(self, StringComparison.Ordinal))
                .Select(c => c.GetProperty("clientId").GetString()!).ToList();
        }
    }

    /// <summary>What node <paramref name="node"/>'s management API says of a client's session (its JSON), or why nothing.</summary>
    public async Task<string> SessionOfAsync(int node, string clientId)
    {
        using var json = await GetJsonAsync(node, $"/api/clients/{Uri.EscapeDataString(clientId)}");
        return json is null ? $"node {node} did not answer" : json.RootElement.GetRawText();
    }

    public string Log(int node, int tailChars = 20_000)
    {
        var text = string.Join("\n", _slots[node - 1].All.Select(p => p.Report()));
        return text.Length > tailChars ? text[^tailChars..] : text;
    }

    public async ValueTask DisposeAsync()
    {
        await _disposed.CancelAsync();
        foreach (var slot in _slots)
        {
            slot.Held = true;
            foreach (var process in slot.All)
            {
                process.Dispose(); // kills it (SIGKILL by PID) if still running, also when stopped
            }
        }

        await Task.WhenAll(_slots.Select(s => s.Supervisor ?? Task.CompletedTask)).WaitAsync(TimeSpan.FromSeconds(20))
            .ContinueWith(_ => { }, TaskScheduler.Default);
        try
        {
            if (_postgres is not null)
            {
                await _postgres.DisposeAsync();
            }
        }
        finally
        {
            await Lab.DisposeAsync();
            _http.Dispose();
            try
            {
                Directory.Delete(_dataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task<string> HealthOfAsync(int node)
    {
        if (_slots[node - 1].Current is not { HasExited: false })
        {
            return $"node {node} not running";
        }

        using var members = await GetJsonAsync(node, "/api/cluster/members");
        if (members is null)
        {
            return $"node {node}: no answer";
        }

        var list = members.RootElement.GetProperty("members").EnumerateArray().ToList();
        var up = list.Count(m => m.GetProperty("status").GetString() == "Up" && m.GetProperty("reachable").GetBoolean());
        if (up != Count || list.Count != Count)
        {
            return $"node {node} sees {up} of {Count} nodes up and reachable ({list.Count} members)";
        }

        try
        {
            using var ready = await _http.GetAsync($"http://{Lab.Address(node)}:{HttpPort}/health/ready");
            return ready.IsSuccessStatusCode ? "ok" : $"node {node} not ready";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return $"node {node}: readiness did not answer";
        }
    }

    private async Task<JsonDocument?> GetJsonAsync(int node, string path)
    {
        try
        {
            using var response = await _http.GetAsync($"http://{Lab.Address(node)}:{HttpPort}{path}");
            return response.IsSuccessStatusCode ? JsonDocument.Parse(await response.Content.ReadAsStringAsync()) : null;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            return null;
        }
    }

    private async Task StartNodeAsync(int node)
    {
        var slot = _slots[node - 1];
        var process = Launch(node);
        lock (_slots)
        {
            slot.All.Add(process);
            slot.Current = process;
        }

        Note(slot, $"started (pid {process.Pid})");
        await process.WaitForLineAsync(l => l.Contains("Broker ready: MQTT listening on", StringComparison.Ordinal), StartTimeout);
        Note(slot, "ready");
    }

    private ExternalProcess Launch(int node)
    {
        var address = Lab.Address(node).ToString();
        string[] seeds = Enumerable.Range(1, Count).Select(n => $"--Cluster:SeedNodes:{n - 1}=akka.tcp://broker@{Lab.Address(n)}:{ClusterPort}").ToArray();
        return ExternalProcess.Start("ip",
        [
            "netns", "exec", Lab.Namespace(node), "dotnet", BrokerNodeProcess.NodeDll,
            $"--Mqtt:Address={address}", $"--Mqtt:Port={MqttPort}", $"--Cluster:Hostname={address}", $"--Cluster:Port={ClusterPort}",
            $"--Metrics:Address={address}", $"--Metrics:Port={HttpPort}", $"--Management:Token={Token}",
            "--Storage:Provider=postgresql", $"--Storage:ConnectionString={_connectionString}",
            $"--Node:DataDir={Path.Combine(_dataDir, "node" + node)}", "--Mqtt:DurableAckTimeout=5", "--Auth:AllowAnonymous=true",
            // One timestamped line per event (the logs are read side by side with the run clock); no line per HTTP probe.
            "--Logging:Console:FormatterOptions:SingleLine=true", "--Logging:Console:FormatterOptions:TimestampFormat=HH:mm:ss.fff ",
            "--Logging:LogLevel:Microsoft.AspNetCore=Warning",
            .. seeds, .. _extraArgs,
        ]);
    }

    /// <summary>Restarts the node a second after it exits, as long as it is not held down and the cluster not disposed.</summary>
    private async Task SuperviseAsync(Slot slot)
    {
        var stop = _disposed.Token;
        while (!stop.IsCancellationRequested)
        {
            if (slot.Current is { HasExited: false } running)
            {
                try
                {
                    var code = await running.WaitForExitAsync(TimeSpan.FromDays(1));
                    Note(slot, $"exited with {code}");
                }
                catch (Exception)
                {
                    Note(slot, "gone");
                }
            }

            try
            {
                await Task.Delay(1000, stop);
                while (slot.Held)
                {
                    await Task.Delay(100, stop);
                }

                await StartNodeAsync(slot.Node);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                // The exit itself is noted by the next turn of the loop ("exited with 1": it could not join in time).
                Note(slot, e is TimeoutException ? $"not ready within {StartTimeout.TotalSeconds:F0} s" : "ended before ready");
            }
            catch (Exception)
            {
                return;
            }
        }
    }

    private void Note(Slot slot, string what)
    {
        lock (_slots)
        {
            slot.Events.Add((Clock.ElapsedMilliseconds, slot.Node, what));
        }
    }

    private sealed class Slot(int node)
    {
        public int Node { get; } = node;

        public volatile ExternalProcess? Current;

        public volatile bool Held;

        public List<ExternalProcess> All { get; } = new();

        public List<(long AtMs, int Node, string What)> Events { get; } = new();

        public Task? Supervisor { get; set; }
    }
}
