using System.Net;
using System.Net.Sockets;
using Broker.Configuration;

namespace Broker.Transport;

/// <summary>
/// A listener port that another process already holds. Its message is the one line an operator needs: the
/// configuration key, the address and the port.
/// </summary>
public sealed class PortInUseException(string key, string address, int port, Exception? inner = null)
    : Exception($"{key}: {address}:{port} is already in use by another process; stop that process or set {key} to a free port", inner)
{
    public string Key { get; } = key;

    public string Address { get; } = address;

    public int Port { get; } = port;
}

/// <summary>
/// Every port a node listens on refuses to be shared. .NET on Linux turns <c>SocketOptionName.ReuseAddress</c> into
/// SO_REUSEADDR and SO_REUSEPORT, with which a second process may bind a port that is in use and the kernel splits
/// connections between the two; so no listener sets it (a plain .NET bind still sets SO_REUSEADDR alone, which lets
/// a restarted node bind while old connections linger in TIME_WAIT but never beside a live listener). Before anything
/// starts, each configured port is bound once and released, so that a port in use stops start-up before the node
/// joins a cluster or touches storage; the real binds map the same failure to the same exception.
/// </summary>
public static class ListenerPorts
{
    /// <summary>The fixed ports of a node's listeners (port 0, "pick a free one", cannot collide and is left out).</summary>
    public static IReadOnlyList<(string Key, string Host, int Port)> Of(BrokerOptions options, bool includeMetrics)
    {
        var ports = new List<(string, string, int)>
        {
            ("Mqtt:Port", options.Mqtt.Address, options.Mqtt.Port),
            ("Cluster:Port", options.Cluster.Hostname, options.Cluster.Port),
        };
        if (options.Mqtt.Tls.Enabled)
        {
            ports.Add(("Mqtt:Tls:Port", options.Mqtt.Tls.Address.Length > 0 ? options.Mqtt.Tls.Address : options.Mqtt.Address,
                options.Mqtt.Tls.Port));
        }

        if (includeMetrics)
        {
            ports.Add(("Metrics:Port", options.Metrics.Address, options.Metrics.Port));
        }

        return ports.Where(p => p.Item3 > 0).ToList();
    }

    /// <summary>Throws <see cref="PortInUseException"/> for the first port that another socket listens on.</summary>
    public static void EnsureFree(IEnumerable<(string Key, string Host, int Port)> ports)
    {
        foreach (var (key, host, port) in ports)
        {
            if (Resolve(host) is not { } address)
            {
                continue; // a host name that does not resolve here: the transport reports it when it binds
            }

            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(address, port));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                throw new PortInUseException(key, host, port, e);
            }
        }
    }

    /// <summary>True when <paramref name="e"/> or one of its inner exceptions says "address already in use".</summary>
    public static bool IsAddressInUse(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse }
                || e.GetType().Name == "AddressInUseException") // Kestrel's (Microsoft.AspNetCore.Connections)
            {
                return true;
            }

            if (e is AggregateException aggregate && aggregate.InnerExceptions.Any(IsAddressInUse))
            {
                return true;
            }
        }

        return false;
    }

    private static IPAddress? Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var address))
        {
            return address;
        }

        try
        {
            return Dns.GetHostAddresses(host).FirstOrDefault();
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
