using Broker.LoadTests.Runner;

namespace Broker.LoadTests.Scenarios;

/// <summary>The built-in scenarios by name.</summary>
public static class ScenarioCatalog
{
    public static readonly (string Name, string Summary)[] All =
    [
        ("connect-storm", "clients connect at a rate and stay idle: connections/s, CONNACK latency, broker RSS per connection [inject:200:5s]"),
        ("connect-rate", "--max-connections lean devices connect as fast as they are taken, --clients in flight, and stay idle: connects/s, CONNACK latency, RSS and heap per connection after a full GC; --persistent: resumes [10,000, 100 in flight]"),
        ("reconnect-storm", "--max-connections devices connected and flowing are dropped at once and reconnect within a random --backoff: time until all are back and their messages flow, refusals, broker RSS peak [2,000, 2s]"),
        ("fan-in", "50 publishers on their own topics, 1 subscriber on the wildcard [constant:50:10s, QoS 0]"),
        ("fan-out", "1 publisher, 100 subscribers on its topic [constant:1:10s]"),
        ("point-to-point", "50 publisher/subscriber pairs on a topic each [constant:50:10s]"),
        ("request-response", "v5 devices send requests with response topic + correlation data; a backend answers [inject:500:10s, 20 devices]"),
        ("persistent-sessions", "QoS 1 into persistent sessions that go offline and come back while messages queue [inject:100:10s]"),
        ("durable", "publishes into --subscribers persistent sessions (default 1), each awaiting its PUBACK (sent once every copy is stored): rate and PUBACK latency [inject:1000:10s, QoS 1]"),
        ("retained-storm", "--topics retained messages stored, then clients subscribe to the wildcard and fetch them all [inject:5:5s]"),
        ("storm", "a well-behaved QoS 1 publisher's PUBACK latency amid malformed, slow, half-open and churning clients, a noisy publisher and a # subscriber [inject:50:20s]"),
        ("failover", "QoS 1 across a cluster (--targets), a node SIGKILLed mid-run; counts acknowledged messages that never arrived [inject:200:20s]"),
    ];

    public static Scenario Create(ScenarioContext context) => context.Options.Scenario switch
    {
        "connect-storm" => new ConnectStormScenario(context),
        "connect-rate" => new ConnectRateScenario(context),
        "reconnect-storm" => new ReconnectStormScenario(context),
        "fan-in" => new PubSubScenario(context, PubSubScenario.Shape.FanIn),
        "fan-out" => new PubSubScenario(context, PubSubScenario.Shape.FanOut),
        "point-to-point" => new PubSubScenario(context, PubSubScenario.Shape.PointToPoint),
        "request-response" => new RequestResponseScenario(context),
        "persistent-sessions" => new PersistentSessionScenario(context),
        "durable" => new DurableLoadScenario(context),
        "retained-storm" => new RetainedStormScenario(context),
        "storm" => new StormScenario(context),
        "failover" => new FailoverScenario(context),
        var other => throw new ArgumentException($"unknown scenario '{other}' (one of: {string.Join(", ", All.Select(s => s.Name))})"),
    };
}
