using Broker.LoadTests;
using Broker.Protocol;

// Quick throughput probe until the full runner (issue 6) lands:
//   dotnet run -c Release --project loadtests/Broker.LoadTests -- [port] [publishers] [messagesPerPublisher] [qos]
var port = args.Length > 0 ? int.Parse(args[0]) : 1883;
var publishers = args.Length > 1 ? int.Parse(args[1]) : 10;
var perPublisher = args.Length > 2 ? int.Parse(args[2]) : 10_000;
var qos = args.Length > 3 ? (MqttQoS)int.Parse(args[3]) : MqttQoS.AtMostOnce;
return await ThroughputScenario.RunAsync("127.0.0.1", port, publishers, perPublisher, qos, 64, TimeSpan.FromSeconds(120));
