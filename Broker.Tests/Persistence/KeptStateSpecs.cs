using System.Text;
using Akka.Actor;
using Broker.Configuration;
using Broker.Operations;
using Broker.Persistence;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using BrokerQoS = Broker.Protocol.MqttQoS;

namespace Broker.Tests.Persistence;

/// <summary>
/// A stored session starts again in three ways: from the state it kept in its node's memory when it passivated, from
/// storage read in batches (<see cref="StoredStateReader"/>), or through Akka.Persistence's own recovery. Each must
/// bring it back exactly (subscriptions, queued messages in order, inbound QoS 2 state, expiry), also across a
/// restart and across a snapshot with events after it, and its journal must still be written and deleted as before.
/// </summary>
public sealed class KeptStateSpecs : IAsyncLifetime
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "broker-kept-" + Guid.NewGuid().ToString("N"));
    private BrokerHarness? _running; // the node a restarting test runs now, stopped at the end whatever happened

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_running is not null)
        {
            await _running.DisposeAsync();
        }

        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private Task<BrokerHarness> StartAsync(string mode = "kept") =>
        BrokerHarness.StartAsync(o => o with
        {
            Node = new NodeOptions { DataDir = _dataDir },
            Sessions = o.Sessions with { PassivateAfterSeconds = 1, PassivatedStateBytes = mode == "kept" ? 4096 : 0 },
            Storage = o.Storage with { SnapshotEvery = 10, ReadSessionsInBatches = mode != "akka" },
        });

    [Theory]
    [InlineData("kept", false)]
    [InlineData("read", false)]
    [InlineData("read", true)]
    [InlineData("akka", true)]
    public async Task A_stored_session_started_again_keeps_subscriptions_queued_messages_and_inbound_qos2_state(string mode, bool restart)
    {
        var broker = _running = await StartAsync(mode);

        // A subscriber with an exact QoS 1 and a wildcard QoS 2 subscription leaves.
        var subscriber = await broker.ConnectAsync(MqttProtocolVersion.V500, "kept-sub", b => b.WithSessionExpiryInterval(3600));
        await subscriber.SubscribeAsync("kept/cmd", MqttQualityOfServiceLevel.AtLeastOnce);
        await subscriber.SubscribeAsync("kept/+/state", MqttQualityOfServiceLevel.ExactlyOnce);
        await subscriber.DisconnectAsync();

        // A publisher with a persistent session sends a QoS 2 message and leaves after PUBREC, before PUBREL.
        var (publisher, connAck) = await RawMqttClient.ConnectAsync(broker.Port, MqttProtocolVersion.V500, "kept-pub",
            c => c with { SessionExpiryInterval = 3600 });
        Assert.Equal(0, connAck.ReasonCode);
        await using (publisher)
        {
            await publisher.SendAsync(Publish("kept/1/state", "first", dup: false));
            Assert.Equal(7, (await publisher.ExpectAsync<MqttPubRecPacket>()).PacketId);
            await publisher.SendAsync(new MqttDisconnectPacket());
            await publisher.ExpectClosedAsync();
        }

        await StoredSessions.WaitPassivatedAsync(broker.Server, ["kept-sub", "kept-pub"], TimeSpan.FromSeconds(20));

        // QoS 1 publishes wake the subscriber's session; it stores them (a snapshot after ten events, more events after
        // it) and leaves again.
        var other = await broker.ConnectAsync(MqttProtocolVersion.V500, "kept-other");
        var later = Enumerable.Range(0, 14).Select(i => $"m{i}").ToArray();
        foreach (var payload in later)
        {
            Assert.True((await other.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("kept/cmd").WithPayload(payload)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build())).IsSuccess);
        }

        await StoredSessions.WaitPassivatedAsync(broker.Server, ["kept-sub"], TimeSpan.FromSeconds(20));
        await other.DisconnectAsync();
        if (restart)
        {
            _running = null;
            await broker.DisposeAsync();
            broker = _running = await StartAsync(mode);
        }

        var metrics = broker.Server.Context.Metrics;

        // The publisher comes back: its session still holds packet id 7 as received, so a resent PUBLISH (DUP) is
        // answered without routing it again, and PUBREL completes it.
        var (back, backAck) = await RawMqttClient.ConnectAsync(broker.Port, MqttProtocolVersion.V500, "kept-pub",
            c => c with { CleanStart = false, SessionExpiryInterval = 3600 });
        await using (back)
        {
            Assert.True(backAck.SessionPresent);
            await back.SendAsync(Publish("kept/1/state", "first", dup: true));
            Assert.Equal(7, (await back.ExpectAsync<MqttPubRecPacket>()).PacketId);
            await back.SendAsync(new MqttPubRelPacket { PacketId = 7 });
            Assert.Equal(7, (await back.ExpectAsync<MqttPubCompPacket>()).PacketId);
        }

        // The subscriber resumes: session present, every message once, in the order they were stored.
        var returning = broker.NewClient();
        var received = new MessageCollector(returning);
        var result = await returning.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "kept-sub").WithCleanStart(false)
            .WithSessionExpiryInterval(3600).Build());
        Assert.True(result.IsSessionPresent);
        var messages = await received.WaitForAsync(1 + later.Length);
        Assert.Equal(["first", .. later], messages.Select(m => Encoding.UTF8.GetString(m.Payload)).ToArray());
        Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, messages[0].QualityOfServiceLevel);
        Assert.All(messages.Skip(1), m => Assert.Equal(MqttQualityOfServiceLevel.AtLeastOnce, m.QualityOfServiceLevel));
        await received.AssertNoMoreAsync(1 + later.Length, TimeSpan.FromSeconds(1));

        // Still subscribed to both filters.
        var info = await broker.Server.Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo("kept-sub"), TimeSpan.FromSeconds(10));
        Assert.Contains(info.Subscriptions, s => s.Filter == "kept/cmd" && s.QoS == 1);
        Assert.Contains(info.Subscriptions, s => s.Filter == "kept/+/state" && s.QoS == 2);

        if (mode == "kept")
        {
            // Every start of a stored session above ran from a kept state: storage was never read for a recovery.
            Assert.True(metrics.SessionStartsFromKept >= 3, $"{metrics.SessionStartsFromKept} starts from kept states");
            Assert.Equal(0, metrics.SessionStartsFromStorage);
        }
        else
        {
            Assert.Equal(0, metrics.SessionStartsFromKept);
            Assert.True(metrics.SessionStartsFromStorage >= 2, $"{metrics.SessionStartsFromStorage} starts from storage");
        }
    }

    [Fact]
    public async Task A_session_started_from_its_kept_state_expires_on_time_and_its_journal_is_deleted()
    {
        await using var broker = await StartAsync();
        var client = await broker.ConnectAsync(MqttProtocolVersion.V500, "kept-expiring", b => b.WithSessionExpiryInterval(12));
        await client.SubscribeAsync("kept/expiring", MqttQualityOfServiceLevel.AtLeastOnce);
        await client.DisconnectAsync();
        await StoredSessions.WaitPassivatedAsync(broker.Server, ["kept-expiring"], TimeSpan.FromSeconds(20));
        Assert.True(await StoredSessions.JournalRowsAsync(broker.Server, "kept-expiring") > 0);

        // Woken by a question (nothing written), then by its expiry: both from the kept state, the journal never
        // started. Ending must still delete what is stored.
        var info = await broker.Server.Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo("kept-expiring"), TimeSpan.FromSeconds(10));
        Assert.True(info.Exists);
        Assert.Contains(info.Subscriptions, s => s.Filter == "kept/expiring");

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (await StoredSessions.JournalRowsAsync(broker.Server, "kept-expiring") > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the expired session's journal rows are still there");
            await Task.Delay(200);
        }

        Assert.True(broker.Server.Context.Metrics.SessionStartsFromKept >= 1);
        var back = broker.NewClient();
        var result = await back.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "kept-expiring").WithCleanStart(false)
            .WithSessionExpiryInterval(12).Build());
        Assert.False(result.IsSessionPresent);
    }

    [Fact]
    public async Task A_kept_state_is_not_handed_to_a_later_stay_of_its_shard_on_the_node()
    {
        var broker = _running = await StartAsync();
        var client = await broker.ConnectAsync(MqttProtocolVersion.V500, "kept-moved", b => b.WithSessionExpiryInterval(3600));
        await client.SubscribeAsync("kept/moved", MqttQualityOfServiceLevel.AtLeastOnce);
        await client.DisconnectAsync();
        await StoredSessions.WaitPassivatedAsync(broker.Server, ["kept-moved"], TimeSpan.FromSeconds(20));

        // The directory hears of the session's shard from another Shard actor, as when the shard left this node and
        // came back (where it may have run, and written, elsewhere meanwhile): what was kept for it is dropped.
        var system = broker.Server.System;
        var otherStay = system.ActorOf(Props.Empty);
        var shardId = broker.Server.Context.SessionShardOf("kept-moved");
        var directory = broker.Server.Context.SessionDirectory;
        var shard = await system.ActorSelection($"/system/sharding/session/{shardId}").ResolveOne(TimeSpan.FromSeconds(10));
        var answer = await directory.Ask<StoredAnswer>(new IsStored("kept-moved", shardId, otherStay), TimeSpan.FromSeconds(10));
        Assert.True(answer.Stored);
        Assert.Null(answer.State);

        // Asked again for the shard's current stay, also once its stored ids are read again, it hands out nothing.
        for (var i = 0; i < 10; i++)
        {
            answer = await directory.Ask<StoredAnswer>(new IsStored("kept-moved", shardId, shard), TimeSpan.FromSeconds(10));
            Assert.True(answer.Stored);
            Assert.Null(answer.State);
            await Task.Delay(200);
        }

        // So the session comes back from storage, complete.
        var metrics = broker.Server.Context.Metrics;
        var fromStorage = metrics.SessionStartsFromStorage;
        var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "kept-moved-pub");
        Assert.True((await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("kept/moved").WithPayload("x")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build())).IsSuccess);
        Assert.Equal(fromStorage + 1, metrics.SessionStartsFromStorage);
        Assert.Equal(0, metrics.SessionStartsFromKept);
        var back = broker.NewClient();
        var received = new MessageCollector(back);
        var result = await back.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "kept-moved").WithCleanStart(false)
            .WithSessionExpiryInterval(3600).Build());
        Assert.True(result.IsSessionPresent);
        Assert.Equal("x", Encoding.UTF8.GetString((await received.WaitForAsync(1))[0].Payload));
    }

    [Fact]
    public void Kept_states_are_bounded_per_entry_and_in_all_and_handed_out_once()
    {
        var kept = new KeptStates(maxEntryBytes: 100, maxTotalBytes: 250);
        Assert.False(kept.Keep("s1", "big", new byte[101]));
        Assert.True(kept.Keep("s1", "a", new byte[100]));
        Assert.True(kept.Keep("s1", "b", new byte[100]));
        Assert.False(kept.Keep("s2", "c", new byte[100])); // 300 > 250 in all
        Assert.True(kept.Keep("s1", "b", new byte[40])); // replaces b's entry
        Assert.True(kept.Keep("s2", "c", new byte[100]));
        Assert.Equal(240, kept.Bytes);
        Assert.Equal(40, kept.Take("s1", "b")!.Length);
        Assert.Null(kept.Take("s1", "b"));
        kept.DropShard("s1");
        Assert.Null(kept.Take("s1", "a"));
        Assert.Equal(100, kept.Bytes);
        Assert.Equal(1, kept.Count);
        Assert.False(new KeptStates(0, 1000).Keep("s", "e", new byte[1]));
    }

    private static MqttPublishPacket Publish(string topic, string payload, bool dup) => new()
    {
        Topic = topic, Payload = Encoding.UTF8.GetBytes(payload), QoS = BrokerQoS.ExactlyOnce, PacketId = 7, Dup = dup,
    };
}
