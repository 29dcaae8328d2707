using Broker.LoadTests;
using Broker.Protocol;

// Quick probes until the full runner (issue 6) lands:
//   dotnet run -c Release --project loadtests/Broker.LoadTests -- fanin [port] [publishers] [messagesPerPublisher] [qos]
//   dotnet run -c Release --project loadtests/Broker.LoadTests -- durable [port] [subscribers] [messages] [window]
var scenario = args.Length > 0 ? args[0] : "fanin";
int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i]) : fallback;
return scenario switch
{
    "durable" => await DurableScenario.RunAsync("127.0.0.1", Arg(1, 1883), Arg(2, 1), Arg(3, 10_000), Arg(4, 100), TimeSpan.FromSeconds(120)),
    _ => await ThroughputScenario.RunAsync("127.0.0.1", Arg(1, 1883), Arg(2, 10), Arg(3, 10_000), (MqttQoS)Arg(4, 0), 64, TimeSpan.FromSeconds(120)),
};
