using Broker.Protocol;

namespace Broker.LoadTests.Runner;

/// <summary>How a virtual client connects.</summary>
public sealed record ClientSettings
{
    public MqttProtocolVersion Version { get; init; } = MqttProtocolVersion.V311;

    public bool CleanStart { get; init; } = true;

    public uint SessionExpiry { get; init; }

    /// <summary>Unacknowledged outbound QoS 1/2 messages at once.</summary>
    public int Window { get; init; } = 100;

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Socket read buffer; small for connect storms of idle clients.</summary>
    public int ReadBufferSize { get; init; } = 64 * 1024;
}

/// <summary>A broker address (loopback only: load is never sent off this machine).</summary>
public sealed record Target(string Host, int Port)
{
    public override string ToString() => $"{Host}:{Port}";

    public static IReadOnlyList<Target> ParseList(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Parse).ToArray();

    public static Target Parse(string value)
    {
        var colon = value.LastIndexOf(':');
        var host = colon > 0 ? value[..colon] : "127.0.0.1";
        var port = int.Parse(colon >= 0 ? value[(colon + 1)..] : value, System.Globalization.CultureInfo.InvariantCulture);
        if (host == "localhost")
        {
            host = "127.0.0.1";
        }

        if (!System.Net.IPAddress.TryParse(host, out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"--targets: {value} is not a loopback address; the runner sends load only to 127.0.0.0/8 or ::1");
        }

        return new Target(host, port);
    }
}
