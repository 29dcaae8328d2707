using System.Net;
using System.Text.RegularExpressions;
using Broker.Tests.Interop;

namespace Broker.Tests.Faults;

/// <summary>
/// A private network for a fault-injection cluster: one Linux network namespace per node, each joined by a veth pair
/// to a bridge in the root namespace, on 10.213.S.0/24 (S chosen free on this machine): node n is 10.213.S.n, the
/// root namespace (PostgreSQL, the test's clients) is 10.213.S.254. Links are cut with iptables rules in a chain of
/// each node's own namespace, so nothing outside the lab changes. Names carry this process's id and a letter per lab
/// (<c>mqf{pid}{a}n{k}</c>, bridge <c>mqfbr{pid}{a}</c>): the leftovers of a run that crashed (its process is gone) are
/// removed at the next start, the namespaces of a run still going are left alone. Needs root, iproute2, iptables.
/// </summary>
public sealed class NetworkLab : IAsyncDisposable
{
    private const string Chain = "MQF"; // jumped to from INPUT and OUTPUT of each node's namespace
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(20);
    private static readonly Regex OurName = new(@"^mqf(?:br)?(\d+)[a-z](?:n\d+)?$", RegexOptions.Compiled);
    private static int _labs;
    private readonly string _id = $"{Environment.ProcessId}{(char)('a' + Interlocked.Increment(ref _labs) % 26)}";
    private readonly int _nodes;
    private bool _up;

    private NetworkLab(int nodes, int subnet)
    {
        _nodes = nodes;
        Subnet = subnet;
    }

    /// <summary>The third octet of 10.213.S.0/24.</summary>
    public int Subnet { get; }

    public string Cidr => $"10.213.{Subnet}.0/24";

    public IPAddress HostAddress => IPAddress.Parse($"10.213.{Subnet}.254");

    public IPAddress Address(int node) => IPAddress.Parse($"10.213.{Subnet}.{node}");

    public string Namespace(int node) => $"mqf{_id}n{node}";

    private string Bridge => $"mqfbr{_id}";

    /// <summary>Why fault tests cannot run here, or null when they can (root, ip, iptables).</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            return "fault injection needs Linux and root (network namespaces)";
        }

        return File.Exists("/usr/sbin/ip") || File.Exists("/sbin/ip") ? File.Exists("/usr/sbin/iptables") ? null
            : "iptables is missing (apt-get install iptables; Broker.Tests/run-tests.sh does)" : "ip (iproute2) is missing";
    }

    public static async Task<NetworkLab> CreateAsync(int nodes)
    {
        await RemoveStaleAsync();
        var used = (await RunAsync("ip", "-o", "-4", "addr", "show")).Stdout;
        var subnet = Enumerable.Range(1, 250).First(s => !used.Contains($" 10.213.{s}.", StringComparison.Ordinal));
        var lab = new NetworkLab(nodes, subnet);
        try
        {
            await lab.CreateAsync();
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    private async Task CreateAsync()
    {
        _up = true;
        await RunAsync("ip", "link", "add", Bridge, "type", "bridge");
        await RunAsync("ip", "addr", "add", $"{HostAddress}/24", "dev", Bridge);
        await RunAsync("ip", "link", "set", Bridge, "up");
        for (var n = 1; n <= _nodes; n++)
        {
            var ns = Namespace(n);
            var veth = $"mqf{_id}v{n}";
            await RunAsync("ip", "netns", "add", ns);
            await RunAsync("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
            await RunAsync("ip", "link", "set", veth, "master", Bridge, "up");
            await RunAsync("ip", "-n", ns, "addr", "add", $"{Address(n)}/24", "dev", "eth0");
            await RunAsync("ip", "-n", ns, "link", "set", "eth0", "up");
            await RunAsync("ip", "-n", ns, "link", "set", "lo", "up");
            await InAsync(n, "iptables", "-N", Chain);
            await InAsync(n, "iptables", "-I", "INPUT", "-j", Chain);
            await InAsync(n, "iptables", "-I", "OUTPUT", "-j", Chain);
        }
    }

    /// <summary>Runs a command inside node <paramref name="node"/>'s namespace.</summary>
    public Task<ExternalProcess> InAsync(int node, string command, params string[] args) =>
        RunAsync("ip", ["netns", "exec", Namespace(node), command, .. args]);

    /// <summary>
    /// Cuts node <paramref name="node"/> off from the given nodes: both ways, or only what they send to it
    /// (<paramref name="inboundOnly"/>: it still sends, it hears nothing back). Packets are dropped (silence), or with
    /// <paramref name="reject"/> answered as a firewall's REJECT does (a TCP reset: a connection attempt fails with
    /// "connection refused", as if nothing listened).
    /// </summary>
    public async Task CutAsync(int node, IEnumerable<int> from, bool inboundOnly = false, bool reject = false)
    {
        foreach (var other in from)
        {
            await BlockAsync(node, "-s", Address(other).ToString(), reject);
            if (!inboundOnly)
            {
                await BlockAsync(node, "-d", Address(other).ToString(), reject);
            }
        }
    }

    // REJECT answers TCP with a reset (ICMP port unreachable, the default, is rate-limited per peer by the kernel, so a
    // chatty peer would mostly see silence); anything else is dropped.
    private async Task BlockAsync(int node, string direction, string address, bool reject)
    {
        if (reject)
        {
            await InAsync(node, "iptables", "-A", Chain, direction, address, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset");
        }

        await InAsync(node, "iptables", "-A", Chain, direction, address, "-j", "DROP");
    }

    /// <summary>Cuts node <paramref name="node"/> off from the root namespace (the test process), both ways, silently.</summary>
    public async Task CutFromHostAsync(int node)
    {
        await BlockAsync(node, "-s", HostAddress.ToString(), reject: false);
        await BlockAsync(node, "-d", HostAddress.ToString(), reject: false);
    }

    /// <summary>Cuts node <paramref name="node"/> off from a TCP service of the root namespace (PostgreSQL) only.</summary>
    public async Task CutServiceAsync(int node, int port)
    {
        await InAsync(node, "iptables", "-A", Chain, "-d", HostAddress.ToString(), "-p", "tcp", "--dport", port.ToString(), "-j", "DROP");
        await InAsync(node, "iptables", "-A", Chain, "-s", HostAddress.ToString(), "-p", "tcp", "--sport", port.ToString(), "-j", "DROP");
    }

    /// <summary>Removes every cut of every node.</summary>
    public async Task HealAsync()
    {
        for (var n = 1; n <= _nodes; n++)
        {
            await InAsync(n, "iptables", "-F", Chain);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_up)
        {
            return;
        }

        _up = false;
        await RemoveAsync(_id);
    }

    /// <summary>Removes the namespaces and bridge of runs whose process is gone (a test host that crashed or was killed).</summary>
    private static async Task RemoveStaleAsync()
    {
        var names = (await RunAsync("ip", "netns", "list")).StdoutLines.Select(l => l.Split(' ')[0])
            .Concat((await RunAsync("ip", "-o", "link", "show")).StdoutLines.Select(l => l.Split(':')[1].Trim().Split('@')[0]));
        var labs = names.Select(n => OurName.Match(n)).Where(m => m.Success)
            .Select(m => (Pid: int.Parse(m.Groups[1].Value), Id: m.Value[(m.Value.StartsWith("mqfbr", StringComparison.Ordinal) ? 5 : 3)..].Split('n')[0]))
            .Distinct();
        foreach (var (_, id) in labs.Where(l => l.Pid != Environment.ProcessId && !Directory.Exists($"/proc/{l.Pid}")))
        {
            await RemoveAsync(id);
        }
    }

    private static async Task RemoveAsync(string lab)
    {
        var namespaces = (await RunAsync("ip", "netns", "list")).StdoutLines.Select(l => l.Split(' ')[0])
            .Where(n => n.StartsWith($"mqf{lab}n", StringComparison.Ordinal)).ToList();
        foreach (var ns in namespaces)
        {
            // Node processes of a crashed run may still live in its namespaces: they were started by this harness.
            foreach (var p in (await RunAsync("ip", ["netns", "pids", ns], check: false)).StdoutLines)
            {
                if (int.TryParse(p.Trim(), out var id))
                {
                    await RunAsync("kill", ["-9", id.ToString()], check: false);
                }
            }

            await RunAsync("ip", ["netns", "del", ns], check: false); // its veth ends go with it
        }

        await RunAsync("ip", ["link", "del", $"mqfbr{lab}"], check: false);
    }

    private static Task<ExternalProcess> RunAsync(string file, params string[] args) => RunAsync(file, args, check: true);

    private static async Task<ExternalProcess> RunAsync(string file, string[] args, bool check)
    {
        if (check)
        {
            return await ExternalProcess.RunAsync(file, args, CommandTimeout);
        }

        var process = ExternalProcess.Start(file, args);
        await process.WaitForExitAsync(CommandTimeout);
        return process;
    }
}
