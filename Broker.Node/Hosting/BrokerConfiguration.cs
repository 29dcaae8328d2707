using Broker.Configuration;
using Microsoft.Extensions.Configuration;

namespace Broker.Node.Hosting;

/// <summary>
/// Reads <see cref="BrokerOptions"/> from appsettings.json, BROKER__SECTION__KEY environment variables and
/// --Section:Key=value flags (later sources win), and turns every mistake into one line naming the key.
/// </summary>
public static class BrokerConfiguration
{
    private static readonly string[] Sections = ["Mqtt", "Sessions", "Node", "Storage", "Cluster", "Metrics", "Sys", "Management", "Auth"];

    public static IConfigurationRoot Build(string[] args, string? basePath = null) =>
        new ConfigurationBuilder()
            .SetBasePath(basePath ?? AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables("BROKER__")
            .AddCommandLine(args)
            .Build();

    /// <summary>Binds and validates; returns the options or the list of problems (one line each).</summary>
    public static (BrokerOptions? Options, IReadOnlyList<string> Errors) Load(IConfiguration configuration)
    {
        var errors = new List<string>();
        foreach (var child in configuration.GetChildren())
        {
            // Configuration keys are case-insensitive: BROKER__MQTT__PORT arrives as "MQTT:PORT".
            if (!Sections.Contains(child.Key, StringComparer.OrdinalIgnoreCase) && IsBrokerKeyLike(child.Key))
            {
                errors.Add($"{child.Key} is not a known section: expected one of {string.Join(", ", Sections)}");
            }
        }

        var options = new BrokerOptions
        {
            Mqtt = Bind<MqttOptions>(configuration, "Mqtt", errors),
            Sessions = Bind<SessionOptions>(configuration, "Sessions", errors),
            Node = Bind<NodeOptions>(configuration, "Node", errors),
            Storage = Bind<StorageOptions>(configuration, "Storage", errors),
            Cluster = BindCluster(configuration, errors),
            Metrics = Bind<MetricsOptions>(configuration, "Metrics", errors),
            Sys = Bind<SysOptions>(configuration, "Sys", errors),
            Management = Bind<ManagementOptions>(configuration, "Management", errors),
            Auth = Bind<AuthOptions>(configuration, "Auth", errors),
        };
        if (errors.Count > 0)
        {
            return (null, errors);
        }

        errors.AddRange(BrokerOptionsValidator.Validate(options));
        return errors.Count > 0 ? (null, errors) : (options, errors);
    }

    private static bool IsBrokerKeyLike(string key) =>
        key is "Auth" or "Metrics" or "Sys" || char.IsUpper(key[0]) && !key.Contains('_') &&
        key is not ("Logging" or "AllowedHosts" or "ASPNETCORE" or "DOTNET");

    private static T Bind<T>(IConfiguration configuration, string name, List<string> errors)
        where T : new()
    {
        var section = configuration.GetSection(name);
        try
        {
            return section.Get<T>(o => o.ErrorOnUnknownConfiguration = true) ?? new T();
        }
        catch (InvalidOperationException e)
        {
            errors.Add(Describe(section, e, typeof(T)));
            return new T();
        }
    }

    private static ClusterOptions BindCluster(IConfiguration configuration, List<string> errors)
    {
        var section = configuration.GetSection("Cluster");
        var seeds = section.GetSection("SeedNodes");
        // An empty JSON array ("SeedNodes": []) arrives as the value "", next to any SeedNodes:0.. from other sources.
        if (string.IsNullOrWhiteSpace(seeds.Value) || seeds.GetChildren().Any())
        {
            if (seeds.Value is not null && seeds.GetChildren().Any())
            {
                var overlay = new ConfigurationBuilder()
                    .AddInMemoryCollection(section.AsEnumerable(makePathsRelative: true)
                        .Where(kv => kv.Value is not null && !kv.Key.Equals("SeedNodes", StringComparison.OrdinalIgnoreCase))
                        .Select(kv => new KeyValuePair<string, string?>("Cluster:" + kv.Key, kv.Value)))
                    .Build();
                return Bind<ClusterOptions>(overlay, "Cluster", errors);
            }

            return Bind<ClusterOptions>(configuration, "Cluster", errors);
        }

        var commaSeparated = seeds.Value!;

        // Also accept one comma-separated value: --Cluster:SeedNodes=akka.tcp://broker@a:4053,akka.tcp://...
        // The binder cannot put a single value into a list, so bind the other keys and split this one here.
        var others = new ConfigurationBuilder()
            .AddInMemoryCollection(section.AsEnumerable(makePathsRelative: true)
                .Where(kv => kv.Value is not null &&
                    !kv.Key.Equals("SeedNodes", StringComparison.OrdinalIgnoreCase) &&
                    !kv.Key.StartsWith("SeedNodes:", StringComparison.OrdinalIgnoreCase))
                .Select(kv => new KeyValuePair<string, string?>("Cluster:" + kv.Key, kv.Value)))
            .Build();
        return Bind<ClusterOptions>(others, "Cluster", errors) with
        {
            SeedNodes = commaSeparated.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        };
    }

    private static string Describe(IConfigurationSection section, InvalidOperationException e, Type optionsType)
    {
        // The binder's messages name the path ("Failed to convert configuration value at 'Mqtt:Port' to type
        // 'System.Int32'") or the unknown keys (below); add the offending value and the allowed shape.
        var message = e.Message;
        var start = message.IndexOf("at '", StringComparison.Ordinal);
        if (start >= 0)
        {
            var end = message.IndexOf('\'', start + 4);
            var key = message[(start + 4)..end];
            var typeStart = message.IndexOf("to type '", StringComparison.Ordinal);
            var type = typeStart >= 0 ? message[(typeStart + 9)..message.IndexOf('\'', typeStart + 9)] : "?";
            var root = section.Path.Length > 0 ? section : null;
            var value = root?.GetSection(key[(section.Path.Length + 1)..]).Value;
            return $"{key} = '{value}' is not a valid {FriendlyType(type)}";
        }

        // "'ErrorOnUnknownConfiguration' was set ..., but the following properties were not found on the instance of
        // <type>: 'Prot', 'Foo'"
        const string notFound = "were not found on the instance of ";
        var list = message.IndexOf(notFound, StringComparison.Ordinal);
        if (list >= 0 && message.IndexOf(": ", list, StringComparison.Ordinal) is var colon and >= 0)
        {
            var known = optionsType.GetProperties().Select(p => p.Name);
            return string.Join("; ", message[(colon + 2)..]
                .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(quoted => quoted.Trim('\''))
                .Select(key => $"{section.Path}:{key} = '{section[key]}' is not a known setting of section {section.Path} " +
                    $"(known: {string.Join(", ", known)})"));
        }

        return $"{section.Path}: {message}";
    }

    private static string FriendlyType(string type) => type switch
    {
        "System.Int32" => "whole number (32-bit)",
        "System.Int64" => "whole number (64-bit)",
        "System.Boolean" => "boolean (true or false)",
        _ => type,
    };
}
