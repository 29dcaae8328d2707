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
        Range(errors, "Mqtt:MaxPacketSize", o.Mqtt.MaxPacketSize, 16, MqttOptions.MqttProtocolMaxPacketSize);
        Range(errors, "Mqtt:ReceiveMaximum", o.Mqtt.ReceiveMaximum, 1, 65535);
        Range(errors, "Mqtt:MaxConnections", o.Mqtt.MaxConnections, 1, 10_000_000);
        Range(errors, "Mqtt:TopicAliasMaximum", o.Mqtt.TopicAliasMaximum, 0, 65535);
        Range(errors, "Mqtt:ServerKeepAlive", o.Mqtt.ServerKeepAlive, 0, 65535);
        Range(errors, "Mqtt:MaxKeepAlive", o.Mqtt.MaxKeepAlive, 0, 65535);
        if (o.Mqtt.MaxKeepAlive > 0 && o.Mqtt.ServerKeepAlive > o.Mqtt.MaxKeepAlive)
        {
            errors.Add($"Mqtt:ServerKeepAlive = {o.Mqtt.ServerKeepAlive} is above Mqtt:MaxKeepAlive = {o.Mqtt.MaxKeepAlive}");
        }
        Range(errors, "Mqtt:ConnectTimeout", o.Mqtt.ConnectTimeout, 1, 3600);
        Range(errors, "Mqtt:DurableAckTimeout", o.Mqtt.DurableAckTimeout, 1, 3600);
        if (!System.Net.IPAddress.TryParse(o.Mqtt.Address, out _))
        {
            errors.Add($"Mqtt:Address = '{o.Mqtt.Address}' is not an IP address (for example 127.0.0.1 or 0.0.0.0)");
        }

        Range(errors, "Mqtt:MaxPublishRate", o.Mqtt.MaxPublishRate, 0, 1_000_000);
        Range(errors, "Mqtt:MaxSubscriptionsPerClient", o.Mqtt.MaxSubscriptionsPerClient, 0, 10_000_000);
        Range(errors, "Mqtt:MaxTopicLevels", o.Mqtt.MaxTopicLevels, 0, 65535);
        ValidateSecurity(errors, o);
        ValidateWebSocket(errors, o);
        Range(errors, "Sessions:MaxQueuedMessages", o.Sessions.MaxQueuedMessages, 1, 10_000_000);
        Range(errors, "Sessions:MaxQueuedBytes", o.Sessions.MaxQueuedBytes, 1024, long.MaxValue);
        if (global::Broker.Sessions.QueueFullPolicies.Parse(o.Sessions.QueueFullPolicy) is null)
        {
            errors.Add($"Sessions:QueueFullPolicy = '{o.Sessions.QueueFullPolicy}' is not supported: allowed backpressure, drop-oldest or drop-newest");
        }

        if (o.Sessions.MaxPublisherHold is { } hold && !(hold >= 0.1 && hold < o.Mqtt.DurableAckTimeout))
        {
            errors.Add($"Sessions:MaxPublisherHold = {o.Sessions.MaxPublisherHold} is out of range: allowed 0.1 s to below Mqtt:DurableAckTimeout ({o.Mqtt.DurableAckTimeout} s)");
        }

        Range(errors, "Sessions:MaxInflight", o.Sessions.MaxInflight, 1, 65535);
        Range(errors, "Sessions:MaxSessionExpiry", o.Sessions.MaxSessionExpiry, 0, uint.MaxValue);
        Range(errors, "Sessions:PersistentSessionExpiry", o.Sessions.PersistentSessionExpiry, 0, uint.MaxValue);
        Range(errors, "Sessions:PassivateAfterSeconds", o.Sessions.PassivateAfterSeconds, 0, 86_400);
        Range(errors, "Sessions:PassivatedStateBytes", o.Sessions.PassivatedStateBytes, 0, 65_536);
        Range(errors, "Sessions:PassivatedStateMegabytes", o.Sessions.PassivatedStateMegabytes, 0, 65_536);
        if (o.Storage.Provider is not ("sqlite" or "postgresql"))
        {
            errors.Add($"Storage:Provider = '{o.Storage.Provider}' is not supported: allowed sqlite or postgresql");
        }

        if (o.Storage.Provider == "postgresql" && string.IsNullOrWhiteSpace(o.Storage.ConnectionString))
        {
            errors.Add("Storage:ConnectionString = '' must be set for postgresql (e.g. Host=127.0.0.1;Port=5432;Database=broker;Username=postgres)");
        }

        Range(errors, "Storage:SnapshotEvery", o.Storage.SnapshotEvery, 10, 1_000_000);
        Range(errors, "Storage:SnapshotEveryBytes", o.Storage.SnapshotEveryBytes, 64 * 1024, 1L << 40);
        Range(errors, "Storage:SharedPayloadMinBytes", o.Storage.SharedPayloadMinBytes, 0, int.MaxValue);
        if ((o.Storage.LeaveAfter != 0 && o.Storage.LeaveAfter < 2) || o.Storage.LeaveAfter > 3600)
        {
            errors.Add($"Storage:LeaveAfter = {o.Storage.LeaveAfter} is out of range: allowed 0 (never leave) or 2 to 3600 seconds");
        }
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

        ValidateOperations(errors, o);
        return errors;
    }

    private static void ValidateOperations(List<string> errors, BrokerOptions o)
    {
        Range(errors, "Metrics:Port", o.Metrics.Port, 0, 65535);
        Range(errors, "Metrics:OtlpIntervalSeconds", o.Metrics.OtlpIntervalSeconds, 1, 3600);
        if (o.Metrics.OtlpEndpoint.Length > 0 &&
            !(Uri.TryCreate(o.Metrics.OtlpEndpoint, UriKind.Absolute, out var otlp) && (otlp.Scheme == Uri.UriSchemeHttp || otlp.Scheme == Uri.UriSchemeHttps)))
        {
            errors.Add($"Metrics:OtlpEndpoint = '{o.Metrics.OtlpEndpoint}' is not an http:// or https:// address (for example http://127.0.0.1:4318)");
        }
        if (!System.Net.IPAddress.TryParse(o.Metrics.Address, out _))
        {
            errors.Add($"Metrics:Address = '{o.Metrics.Address}' is not an IP address (for example 127.0.0.1 or 0.0.0.0)");
        }

        Range(errors, "Sys:Interval", o.Sys.Interval, 0, 86_400);
        if (o.Management.Token.Length > 0 && o.Metrics.Port == 0)
        {
            errors.Add("Management:Token is set but Metrics:Port = 0: the management API is served on the metrics port, so set one");
        }

        if (o.Management.Token.Length is > 0 and < 16)
        {
            errors.Add($"Management:Token is {o.Management.Token.Length} characters long: use at least 16");
        }
    }

    private static void ValidateSecurity(List<string> errors, BrokerOptions o)
    {
        Range(errors, "Auth:ReloadInterval", o.Auth.ReloadInterval, 1, 3600);
        FileExists(errors, "Auth:PasswordFile", o.Auth.PasswordFile);
        FileExists(errors, "Auth:AclFile", o.Auth.AclFile);
        var http = o.Auth.Http;
        if (http.Url.Length > 0 &&
            !(Uri.TryCreate(http.Url, UriKind.Absolute, out var url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps)))
        {
            errors.Add($"Auth:Http:Url = '{http.Url}' is not an http:// or https:// address");
        }

        if (http.AclUrl.Length > 0 &&
            !(Uri.TryCreate(http.AclUrl, UriKind.Absolute, out var aclUrl) && (aclUrl.Scheme == Uri.UriSchemeHttp || aclUrl.Scheme == Uri.UriSchemeHttps)))
        {
            errors.Add($"Auth:Http:AclUrl = '{http.AclUrl}' is not an http:// or https:// address");
        }

        Range(errors, "Auth:Http:TimeoutSeconds", http.TimeoutSeconds, 1, 60);
        Range(errors, "Auth:Http:CacheSeconds", http.CacheSeconds, 0, 3600);
        Range(errors, "Auth:Http:AclCacheSeconds", http.AclCacheSeconds, 0, 3600);
        Range(errors, "Auth:Http:AclCacheSize", http.AclCacheSize, 100, 10_000_000);
        if (o.Auth.Jwt.Secret.Length is > 0 and < 32)
        {
            errors.Add($"Auth:Jwt:Secret is {o.Auth.Jwt.Secret.Length} characters long: at least 32 are needed for HS256");
        }

        FileExists(errors, "Auth:Jwt:JwksFile", o.Auth.Jwt.JwksFile);
        var tls = o.Mqtt.Tls;
        Range(errors, "Mqtt:Tls:Port", tls.Port, 0, 65535);
        if (!tls.Enabled)
        {
            if (tls.RequireClientCertificate || tls.ClientCaFile.Length > 0 || tls.Key.Length > 0)
            {
                errors.Add("Mqtt:Tls:Certificate = '' must name a PEM or PFX file when other Mqtt:Tls settings are given");
            }

            return;
        }

        if (tls.Address.Length > 0 && !System.Net.IPAddress.TryParse(tls.Address, out _))
        {
            errors.Add($"Mqtt:Tls:Address = '{tls.Address}' is not an IP address (empty means the same as Mqtt:Address)");
        }

        if (tls.Port == o.Mqtt.Port && tls.Port != 0)
        {
            errors.Add($"Mqtt:Tls:Port = {tls.Port} is the same as Mqtt:Port");
        }

        FileExists(errors, "Mqtt:Tls:Certificate", tls.Certificate);
        FileExists(errors, "Mqtt:Tls:Key", tls.Key);
        FileExists(errors, "Mqtt:Tls:ClientCaFile", tls.ClientCaFile);
        if (tls.RequireClientCertificate && string.IsNullOrWhiteSpace(tls.ClientCaFile))
        {
            errors.Add("Mqtt:Tls:ClientCaFile = '' must name the CA that issues client certificates when Mqtt:Tls:RequireClientCertificate is true");
        }
    }

    private static void ValidateWebSocket(List<string> errors, BrokerOptions o)
    {
        var ws = o.Mqtt.WebSocket;
        Range(errors, "Mqtt:WebSocket:Port", ws.Port, -1, 65535);
        Range(errors, "Mqtt:WebSocket:TlsPort", ws.TlsPort, -1, 65535);
        Range(errors, "Mqtt:WebSocket:MaxMessageSize", ws.MaxMessageSize, 0, 268_435_455);
        if (ws.Address.Length > 0 && !System.Net.IPAddress.TryParse(ws.Address, out _))
        {
            errors.Add($"Mqtt:WebSocket:Address = '{ws.Address}' is not an IP address (empty means the same as Mqtt:Address)");
        }

        if (!ws.Path.StartsWith('/') || ws.Path.Contains('?') || ws.Path.Contains('#') || ws.Path.Any(char.IsWhiteSpace))
        {
            errors.Add($"Mqtt:WebSocket:Path = '{ws.Path}' must be an absolute URL path like /mqtt");
        }

        if (ws.TlsPort >= 0 && !o.Mqtt.Tls.Enabled)
        {
            errors.Add($"Mqtt:WebSocket:TlsPort = {ws.TlsPort} needs a certificate: set Mqtt:Tls:Certificate");
        }

        if (ws.Port > 0 && ws.Port == ws.TlsPort)
        {
            errors.Add($"Mqtt:WebSocket:TlsPort = {ws.TlsPort} is the same as Mqtt:WebSocket:Port");
        }

        foreach (var (key, port) in new[] { ("Mqtt:WebSocket:Port", ws.Port), ("Mqtt:WebSocket:TlsPort", ws.TlsPort) })
        {
            if (port > 0 && (port == o.Mqtt.Port || (o.Mqtt.Tls.Enabled && port == o.Mqtt.Tls.Port)))
            {
                errors.Add($"{key} = {port} is already the port of the MQTT {(port == o.Mqtt.Port ? "TCP" : "TLS")} listener");
            }
        }

        foreach (var origin in ws.AllowedOrigins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/")
            {
                errors.Add($"Mqtt:WebSocket:AllowedOrigins = '{origin}' is not an origin like https://dashboard.example.com or http://localhost:8080");
            }
        }
    }

    private static void FileExists(List<string> errors, string key, string path)
    {
        if (!string.IsNullOrWhiteSpace(path) && !File.Exists(path))
        {
            errors.Add($"{key} = '{path}': file not found");
        }
    }

    private static void Range(List<string> errors, string key, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            errors.Add($"{key} = {value} is out of range: allowed {min} to {max}");
        }
    }
}
