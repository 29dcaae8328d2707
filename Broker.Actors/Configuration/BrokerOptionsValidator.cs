namespace Broker.Configuration;

/// <summary>
/// Checks every option and names the first bad one as "Section:Key" with the value and what is allowed, so that a
/// node refuses to start with a one-line message instead of failing later in a confusing way.
/// </summary>
public static class BrokerOptionsValidator
{
    public static IReadOnlyList<string> Validate(BrokerOptions o)
    {
        var errors = new List<string>();
        Range(errors, "Mqtt:Port", o.Mqtt.Port, 0, 65535);
        Range(errors, "Mqtt:MaxPacketSize", o.Mqtt.MaxPacketSize, 16, 268_435_455);
        Range(errors, "Mqtt:ReceiveMaximum", o.Mqtt.ReceiveMaximum, 1, 65535);
        Range(errors, "Mqtt:MaxConnections", o.Mqtt.MaxConnections, 1, 10_000_000);
        Range(errors, "Mqtt:TopicAliasMaximum", o.Mqtt.TopicAliasMaximum, 0, 65535);
        Range(errors, "Mqtt:ServerKeepAlive", o.Mqtt.ServerKeepAlive, 0, 65535);
        Range(errors, "Mqtt:ConnectTimeout", o.Mqtt.ConnectTimeout, 1, 3600);
        Range(errors, "Mqtt:DurableAckTimeout", o.Mqtt.DurableAckTimeout, 1, 3600);
        if (!System.Net.IPAddress.TryParse(o.Mqtt.Address, out _))
        {
            errors.Add($"Mqtt:Address = '{o.Mqtt.Address}' is not an IP address (for example 127.0.0.1 or 0.0.0.0)");
        }

        Range(errors, "Sessions:MaxQueuedMessages", o.Sessions.MaxQueuedMessages, 1, 10_000_000);
        Range(errors, "Sessions:MaxInflight", o.Sessions.MaxInflight, 1, 65535);
        Range(errors, "Sessions:MaxSessionExpiry", o.Sessions.MaxSessionExpiry, 0, uint.MaxValue);
        Range(errors, "Sessions:PersistentSessionExpiry", o.Sessions.PersistentSessionExpiry, 0, uint.MaxValue);
        if (o.Storage.Provider is not ("sqlite" or "postgresql"))
        {
            errors.Add($"Storage:Provider = '{o.Storage.Provider}' is not supported: allowed sqlite or postgresql");
        }

        if (o.Storage.Provider == "postgresql" && string.IsNullOrWhiteSpace(o.Storage.ConnectionString))
        {
            errors.Add("Storage:ConnectionString = '' must be set for postgresql (e.g. Host=127.0.0.1;Port=5432;Database=broker;Username=postgres)");
        }

        Range(errors, "Storage:SnapshotEvery", o.Storage.SnapshotEvery, 10, 1_000_000);
        if (string.IsNullOrWhiteSpace(o.Node.DataDir))
        {
            errors.Add("Node:DataDir = '' must name a directory");
        }

        if (string.IsNullOrWhiteSpace(o.Cluster.Hostname))
        {
            errors.Add("Cluster:Hostname = '' must be a host name or IP address");
        }

        Range(errors, "Cluster:Port", o.Cluster.Port, 0, 65535);
        foreach (var seed in o.Cluster.SeedNodes)
        {
            if (!Akka.Actor.Address.TryParse(seed, out var address) || address.Host is null || address.Port is null)
            {
                errors.Add($"Cluster:SeedNodes = '{seed}' is not an Akka address like akka.tcp://broker@127.0.0.1:4053");
            }
        }

        if (o.Cluster.Discovery is not ("seed" or "kubernetes"))
        {
            errors.Add($"Cluster:Discovery = '{o.Cluster.Discovery}' is not supported: allowed seed or kubernetes");
        }

        Range(errors, "Cluster:Kubernetes:ManagementPort", o.Cluster.Kubernetes.ManagementPort, 1, 65535);
        Range(errors, "Cluster:Kubernetes:RequiredContactPoints", o.Cluster.Kubernetes.RequiredContactPoints, 1, 1000);

        return errors;
    }

    private static void Range(List<string> errors, string key, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            errors.Add($"{key} = {value} is out of range: allowed {min} to {max}");
        }
    }
}
