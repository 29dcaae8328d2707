using System.Globalization;
using System.Reflection;
using System.Text;
using Akka.Actor;
using Broker.Cluster;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Operations;

/// <summary>
/// One per node, named "sys-topics": every <c>Sys:Interval</c> seconds it publishes this node's figures as retained
/// QoS 0 messages under Mosquitto's $SYS names, through the normal routing path (topic entities), like any publish.
/// <para>
/// Names in a cluster: every node publishes under <c>$SYS/brokers/&lt;host:port&gt;/...</c> (its cluster address), so
/// nodes never overwrite each other. Tools written for Mosquitto read <c>$SYS/broker/...</c>: those topics carry the
/// figures of one node only, the cluster leader, so that they never flip between nodes (on a single node they are
/// simply that node's). A value is published only when it changed, as Mosquitto does.
/// </para>
/// </summary>
public sealed class SysTopicsActor : ReceiveActor, IWithTimers
{
    public const string Name = "sys-topics";
    private static readonly string Version = "clustered-mqtt-broker " +
        (typeof(SysTopicsActor).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0");

    private readonly BrokerContext _context;
    private readonly TimeSpan _interval;
    private readonly Dictionary<string, string> _lastPublished = new(StringComparer.Ordinal);
    private readonly LoadAverage _messagesIn = new();
    private readonly LoadAverage _messagesOut = new();
    private readonly LoadAverage _bytesIn = new();
    private readonly LoadAverage _bytesOut = new();
    private readonly LoadAverage _connects = new();
    private long _lastTick = Environment.TickCount64;
    private long _maxConnected;

    public SysTopicsActor(BrokerContext context, TimeSpan interval)
    {
        _context = context;
        _interval = interval;
        Receive<Tick>(_ => Publish());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(BrokerContext context, TimeSpan interval) =>
        Akka.Actor.Props.Create(() => new SysTopicsActor(context, interval));

    /// <summary>The prefix of this node's own $SYS topics: "$SYS/brokers/host:port".</summary>
    public static string NodePrefix(Address self) => $"$SYS/brokers/{self.Host}:{self.Port}";

    protected override void PreStart()
    {
        Publish(); // at once, so that a subscriber does not wait a whole interval for the first values
        Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, _interval);
    }

    private void Publish()
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var values = Values();
        var prefixes = new List<string>(2) { NodePrefix(cluster.SelfAddress) };
        if (cluster.State.Leader == cluster.SelfAddress)
        {
            prefixes.Add("$SYS/broker");
        }

        foreach (var prefix in prefixes)
        {
            foreach (var (name, value) in values)
            {
                var topic = prefix + "/" + name;
                if (_lastPublished.TryGetValue(topic, out var last) && last == value)
                {
                    continue;
                }

                _lastPublished[topic] = value;
                var message = new MqttApplicationMessage(topic, Encoding.UTF8.GetBytes(value), MqttQoS.AtMostOnce, Retain: true,
                    MqttMessageProperties.Empty, PublisherClientId: "$SYS", ExpiresAtUnixMs: 0);
                _context.TopicRegion.Tell(new RoutePublish(message, null, 0));
            }
        }
    }

    private List<(string Name, string Value)> Values()
    {
        var m = _context.Metrics;
        var now = Environment.TickCount64;
        var seconds = Math.Max(0.001, (now - _lastTick) / 1000.0);
        _lastTick = now;
        var received = m.MessagesIn;
        var sent = m.MessagesOut;
        var connected = m.Connections;
        _maxConnected = Math.Max(_maxConnected, connected);
        var offline = Math.Max(0, m.Sessions - m.SessionsOnline);
        var list = new List<(string, string)>
        {
            ("version", Version),
            ("uptime", $"{(long)(DateTimeOffset.UtcNow - m.StartedAt).TotalSeconds} seconds"),
            ("clients/connected", N(connected)),
            ("clients/disconnected", N(offline)),
            ("clients/total", N(connected + offline)),
            ("clients/maximum", N(_maxConnected)),
            ("messages/received", N(received)),
            ("messages/sent", N(sent)),
            ("publish/messages/received", N(received)),
            ("publish/messages/sent", N(sent)),
            ("publish/messages/dropped", N(m.DroppedQueueFull + m.DroppedSlowConsumer)),
            ("publish/messages/dropped/queue-full-oldest", N(m.DroppedOldest)),
            ("publish/messages/dropped/queue-full-newest", N(m.DroppedNewest)),
            ("publish/messages/dropped/queue-overflow", N(m.DroppedOverflow)),
            ("publish/messages/dropped/slow-consumer", N(m.DroppedSlowConsumer)),
            ("publish/messages/refused/queue-full", N(m.RefusedQueueFull)),
            ("bytes/received", N(m.BytesIn)),
            ("bytes/sent", N(m.BytesOut)),
            ("subscriptions/count", N(m.Subscriptions)),
            ("retained messages/count", N(m.RetainedMessages)),
            ("store/messages/count", N(m.Queued + m.Inflight)),
        };
        Load(list, "messages/received", _messagesIn, received, seconds);
        Load(list, "messages/sent", _messagesOut, sent, seconds);
        Load(list, "bytes/received", _bytesIn, m.BytesIn, seconds);
        Load(list, "bytes/sent", _bytesOut, m.BytesOut, seconds);
        Load(list, "connections", _connects, m.Connects, seconds);
        return list;
    }

    private static void Load(List<(string, string)> list, string name, LoadAverage load, long total, double seconds)
    {
        load.Update(total, seconds);
        list.Add(($"load/{name}/1min", F(load.OneMinute)));
        list.Add(($"load/{name}/5min", F(load.FiveMinutes)));
        list.Add(($"load/{name}/15min", F(load.FifteenMinutes)));
    }

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string F(double value) => value.ToString("F2", CultureInfo.InvariantCulture);

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}

/// <summary>
/// Mosquitto's load averages: per-minute rates smoothed exponentially over 1, 5 and 15 minutes
/// (new = rate + e^(-dt/window) * (old - rate)), from the growth of a counter between two updates.
/// </summary>
public sealed class LoadAverage
{
    private long _last = -1;

    public double OneMinute { get; private set; }

    public double FiveMinutes { get; private set; }

    public double FifteenMinutes { get; private set; }

    public void Update(long total, double seconds)
    {
        if (_last < 0)
        {
            _last = total;
            return;
        }

        var perMinute = (total - _last) * 60.0 / seconds;
        _last = total;
        OneMinute = Smooth(OneMinute, perMinute, seconds, 60);
        FiveMinutes = Smooth(FiveMinutes, perMinute, seconds, 300);
        FifteenMinutes = Smooth(FifteenMinutes, perMinute, seconds, 900);
    }

    private static double Smooth(double current, double rate, double seconds, double window) =>
        rate + (Math.Exp(-seconds / window) * (current - rate));
}
