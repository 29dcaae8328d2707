using System.Diagnostics;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>
/// A plain resume (Clean Start 0, same expiry, no will, nothing queued) answers CONNACK before anything is stored, and
/// records the attach later: before the session's next stored event, or after a quarter of its expiry (at most a
/// minute). These specs kill -9 the node (SQLite) at the moments that record matters, then resume on a new process
/// on the same storage.
/// </summary>
public sealed class ResumeRecordSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly NodeProcesses _nodes = new("broker-resume-");

    /// <summary>
    /// Sessions resumed without a stored record: one receives a QoS 1 message (stored, so the record went first) and
    /// does not acknowledge it; after kill -9 it comes again with DUP under its packet id [MQTT-4.4.0-1] (without the
    /// record, recovery took it for never sent). The other was idle at the kill: its session and subscription are
    /// there after the restart, and a message published to it meanwhile arrives.
    /// </summary>
    [Theory]
    [InlineData(ClientVersion.V500)]
    [InlineData(ClientVersion.V311)]
    public async Task A_resumed_session_should_keep_everything_and_resend_with_DUP_after_kill_9(ClientVersion version)
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var (holderId, idleId) = ($"rr-holder-{run}", $"rr-idle-{run}");
        var (holderTopic, idleTopic) = ($"rr/{run}/held", $"rr/{run}/idle");
        var node = await StartNodeAsync();
        foreach (var (id, topic) in new[] { (holderId, holderTopic), (idleId, idleTopic) })
        {
            var (created, first) = await ConnectAsync(node.MqttPort, version, id, cleanStart: version == ClientVersion.V500, sessionExpiry: 3600);
            Assert.False(first.SessionPresent);
            await created.SubscribeAsync(1, topic, MqttQoS.AtLeastOnce);
            await DisconnectAsync(created);
        }

        var (holder, resumed) = await ConnectAsync(node.MqttPort, version, holderId, cleanStart: false, sessionExpiry: 3600);
        await using var holderBeforeKill = holder;
        Assert.True(resumed.SessionPresent);
        var (idle, idleResumed) = await ConnectAsync(node.MqttPort, version, idleId, cleanStart: false, sessionExpiry: 3600);
        await using var idleBeforeKill = idle;
        Assert.True(idleResumed.SessionPresent);

        var (publisher, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, $"rr-pub-{run}", cleanStart: true);
        await using (publisher)
        {
            await PublishAllAsync(publisher, holderTopic, MqttQoS.AtLeastOnce, ["held-00001"]);
        }

        var sent = await holder.ExpectAsync<MqttPublishPacket>(TimeSpan.FromSeconds(10));
        Assert.False(sent.Dup);

        await node.KillHardAsync();
        node = await StartNodeAsync();
        var (publisherAfter, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, $"rr-pub2-{run}", cleanStart: true);
        await using (publisherAfter)
        {
            await PublishAllAsync(publisherAfter, idleTopic, MqttQoS.AtLeastOnce, ["idle-00001"]);
        }

        var (holderAfter, holderAck) = await ConnectAsync(node.MqttPort, version, holderId, cleanStart: false, sessionExpiry: 3600);
        await using (holderAfter)
        {
            Assert.True(holderAck.SessionPresent, "the resumed session was lost");
            var again = await holderAfter.ExpectAsync<MqttPublishPacket>(TimeSpan.FromSeconds(30));
            Assert.Equal("held-00001", System.Text.Encoding.UTF8.GetString(again.Payload.Span));
            Assert.True(again.Dup, "sent before the kill, sent again without DUP");
            Assert.Equal(sent.PacketId, again.PacketId);
        }

        var (idleAfter, idleAck) = await ConnectAsync(node.MqttPort, version, idleId, cleanStart: false, sessionExpiry: 3600);
        await using (idleAfter)
        {
            Assert.True(idleAck.SessionPresent, "the idle resumed session was lost");
            var queued = await idleAfter.ExpectAsync<MqttPublishPacket>(TimeSpan.FromSeconds(30));
            Assert.Equal("idle-00001", System.Text.Encoding.UTF8.GetString(queued.Payload.Span));
        }
    }

    /// <summary>
    /// A session with a 16 s expiry leaves, comes back at once (record deferred: at most 4 s) and stays connected for
    /// 12 s; then kill -9. Its expiry counts from the kill: at 17 s after it left (past the expiry counted from then)
    /// the restarted node still has it. Without the timed record, recovery would count from the departure and end it.
    /// </summary>
    [Fact]
    public async Task A_session_resumed_and_connected_for_a_while_should_count_its_expiry_from_the_kill()
    {
        const uint expiry = 16;
        var run = Guid.NewGuid().ToString("N")[..8];
        var id = $"rr-long-{run}";
        var node = await StartNodeAsync();
        var (created, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, id, cleanStart: true, sessionExpiry: expiry);
        await created.SubscribeAsync(1, $"rr/{run}/long", MqttQoS.AtLeastOnce);
        await DisconnectAsync(created);
        var left = Stopwatch.StartNew();

        var (resumed, ack) = await ConnectAsync(node.MqttPort, ClientVersion.V500, id, cleanStart: false, sessionExpiry: expiry);
        await using var resumedBeforeKill = resumed;
        Assert.True(ack.SessionPresent);
        Assert.True(left.Elapsed < TimeSpan.FromSeconds(expiry / 4.0), $"resumed {left.ElapsedMilliseconds} ms after leaving: too late for the deferred record");
        await Task.Delay(TimeSpan.FromSeconds(12) - left.Elapsed);

        await node.KillHardAsync();
        var killed = Stopwatch.StartNew();
        node = await StartNodeAsync();
        var wait = TimeSpan.FromSeconds(expiry + 1) - left.Elapsed;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        output.WriteLine($"reconnecting {left.ElapsedMilliseconds} ms after leaving, {killed.ElapsedMilliseconds} ms after the kill");
        Assert.True(killed.Elapsed < TimeSpan.FromSeconds(expiry - 1), "the restart took longer than the expiry: nothing to conclude");
        var (after, afterAck) = await ConnectAsync(node.MqttPort, ClientVersion.V500, id, cleanStart: false, sessionExpiry: expiry);
        await using (after)
        {
            Assert.True(afterAck.SessionPresent, "the session expired counting from before its last connection");
        }
    }

    private async Task<BrokerNodeProcess> StartNodeAsync()
    {
        var clock = Stopwatch.StartNew();
        var node = await _nodes.StartAsync($"--Node:DataDir={_nodes.DataDir}");
        output.WriteLine($"node pid {node.Process.Pid} ready in {clock.ElapsedMilliseconds} ms on MQTT port {node.MqttPort}");
        return node;
    }

    public void Dispose() => _nodes.Dispose();
}
