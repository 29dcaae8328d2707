namespace Broker.Tests.Transport;

/// <summary>
/// Where the JavaScript side of the WebSocket specs lives: Broker.Tests/WebSocket/js, with MQTT.js installed from its
/// package-lock.json by run-tests.sh (<c>npm ci</c>) when node_modules is missing.
/// </summary>
public static class JsEnvironment
{
    /// <summary>Debian's node (package nodejs).</summary>
    public const string Node = "/usr/bin/node";

    public static string Directory { get; } = Find();

    public static string Script(string name) => Path.Combine(Directory, name);

    /// <summary>MQTT.js's browser bundle (dist/mqtt.min.js), served to Chromium by the browser specs.</summary>
    public static string MqttBrowserBundle => Path.Combine(Directory, "node_modules", "mqtt", "dist", "mqtt.min.js");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "Broker.Tests", "WebSocket", "js");
            if (System.IO.Directory.Exists(candidate))
            {
                if (!File.Exists(Path.Combine(candidate, "node_modules", "mqtt", "package.json")))
                {
                    throw new InvalidOperationException(
                        $"MQTT.js is not installed in {candidate}: run Broker.Tests/run-tests.sh, or npm ci there");
                }

                return candidate;
            }
        }

        throw new InvalidOperationException("Broker.Tests/WebSocket/js not found above " + AppContext.BaseDirectory);
    }
}
