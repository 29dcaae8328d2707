using System.Collections.Concurrent;
using System.Text;
using Broker.Configuration;
using Broker.Node.Hosting;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Microsoft.Extensions.Logging;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Operations;

/// <summary>
/// The node's log events reach Microsoft.Extensions.Logging (through <see cref="AkkaLogBridge"/>, as in Broker.Node)
/// with named values: connection and session events at Information, protocol violations at Warning with client id, address and
/// reason; payloads never appear.
/// </summary>
public sealed class LogSpecs
{
    [Fact]
    public async Task Connection_events_and_protocol_violations_are_logged_with_named_values_and_without_payloads()
    {
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        var dataDir = Directory.CreateTempSubdirectory("broker-logs-").FullName;
        var options = new BrokerOptions
        {
            Mqtt = new MqttOptions { Address = "127.0.0.1", Port = 0 },
            Node = new NodeOptions { DataDir = dataDir },
            Cluster = new ClusterOptions { Hostname = "127.0.0.1", Port = 0 },
        };
        var server = await BrokerServer.StartAsync(options, default, AkkaLogBridge.Setup(factory));
        try
        {
            const string secret = "SECRET-PAYLOAD-7f3a";
            var (client, connAck) = await RawMqttClient.ConnectAsync(server.MqttEndPoint.Port, ClientVersion.V500, "log-client");
            Assert.Equal(0, connAck.ReasonCode);
            await client.SendAsync(new MqttPublishPacket { Topic = "logs/ok", Payload = Encoding.UTF8.GetBytes(secret), QoS = MqttQoS.AtMostOnce });
            // A topic name with a wildcard is illegal in PUBLISH [MQTT-3.3.2-2]: 0x90 topic name invalid, and the close.
            await client.SendAsync(new MqttPublishPacket { Topic = "logs/+", Payload = Encoding.UTF8.GetBytes(secret), QoS = MqttQoS.AtMostOnce });
            await client.ExpectClosedAsync();

            var violation = await logs.WaitForAsync(e => e.Level == LogLevel.Warning && e.Values.ContainsKey("Detail") &&
                Equals(e.Values.GetValueOrDefault("ClientId"), "log-client"));
            Assert.StartsWith("127.0.0.1:", (string)violation.Values["Address"]!);
            Assert.Equal((byte)MqttReasonCode.TopicNameInvalid, Convert.ToByte(violation.Values["ReasonCode"]));
            Assert.Equal("TopicNameInvalid", violation.Values["Reason"]?.ToString());

            var connected = await logs.WaitForAsync(e => e.Level == LogLevel.Information && e.Message.Contains(" connected: ", StringComparison.Ordinal));
            Assert.Equal("log-client", connected.Values["ClientId"]);
            Assert.Equal("5.0", connected.Values["ProtocolVersion"]);

            // Session events of a persistent session: created, taken over, resumed.
            var sessionConnect = (MqttConnectPacket c) => c with { CleanStart = false, SessionExpiryInterval = 60 };
            var (first, _) = await RawMqttClient.ConnectAsync(server.MqttEndPoint.Port, ClientVersion.V500, "log-session", sessionConnect);
            var (second, secondAck) = await RawMqttClient.ConnectAsync(server.MqttEndPoint.Port, ClientVersion.V500, "log-session", sessionConnect);
            Assert.True(secondAck.SessionPresent);
            var created = await logs.WaitForAsync(e => e.Level == LogLevel.Information && Equals(e.Values.GetValueOrDefault("Action"), "created"));
            Assert.Equal("log-session", created.Values["ClientId"]);
            await logs.WaitForAsync(e => e.Level == LogLevel.Information && e.Message.Contains("taken over", StringComparison.Ordinal) &&
                Equals(e.Values.GetValueOrDefault("ClientId"), "log-session"));
            await logs.WaitForAsync(e => e.Level == LogLevel.Information && Equals(e.Values.GetValueOrDefault("Action"), "resumed"));
            await first.DisposeAsync();
            await second.DisposeAsync();

            Assert.DoesNotContain(logs.Entries, e => e.Message.Contains(secret, StringComparison.Ordinal));
            await client.DisposeAsync();
        }
        finally
        {
            await server.DisposeAsync();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private sealed record Entry(LogLevel Level, string Category, string Message, IReadOnlyDictionary<string, object?> Values);

    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<Entry> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        public async Task<Entry> WaitForAsync(Func<Entry, bool> match)
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (true)
            {
                if (Entries.FirstOrDefault(match) is { } found)
                {
                    return found;
                }

                Assert.True(DateTime.UtcNow < deadline, "no such log entry; got:\n" + string.Join("\n", Entries.Select(e => e.Message)));
                await Task.Delay(20);
            }
        }

        private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = state is IEnumerable<KeyValuePair<string, object?>> pairs
                    ? pairs.ToDictionary(p => p.Key, p => p.Value)
                    : new Dictionary<string, object?>();
                owner.Entries.Enqueue(new Entry(logLevel, category, formatter(state, exception), values));
            }
        }
    }
}
