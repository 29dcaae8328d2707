using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Sessions;

namespace Broker.Tests.Sessions;

/// <summary>Attach, takeover, DISCONNECT, connection loss, will and expiry timing, straight on <see cref="SessionLifecycle"/>.</summary>
public sealed class SessionLifecycleSpecs
{
    private const long Now = 1_800_000_000_000;
    private const int ServerInflight = 32;

    private static MqttWill Will(uint delay = 0) =>
        new() { Topic = "will/t", Payload = new byte[] { 1 }, QoS = MqttQoS.AtLeastOnce, DelayInterval = delay };

    /// <summary>A stored persistent session (expiry an hour) whose client left a minute ago, with one subscription.</summary>
    private static SessionFacts Stored(uint expiry = 3600, MqttWill? will = null) =>
        new(expiry, Now - 60_000, will, HasState: true, Subscriptions: 1, Persistent: true, Journaled: true, Live: false,
            AttachRecordPending: false, Queued: 0, Inflight: 0);

    /// <summary>The same session with its client connected.</summary>
    private static SessionFacts Attached(uint expiry = 3600, MqttWill? will = null) => Stored(expiry, will) with { DetachedAtMs = 0 };

    private static ConnectionInfo Info(bool cleanStart = false, uint expiry = 3600, MqttWill? will = null, int receiveMaximum = 100) =>
        new(MqttProtocolVersion.V500, cleanStart, expiry, will, receiveMaximum);

    private static AttachPlan Attach(SessionFacts s, ConnectionInfo info, bool takeover = false) =>
        SessionLifecycle.PlanAttach(s, info, takeover, ServerInflight, Now);

    [Fact]
    public void A_takeover_should_close_the_old_connection_and_send_a_will_without_delay_at_once()
    {
        var plan = Attach(Attached(will: Will(delay: 0)), Info(), takeover: true);

        Assert.True(plan.TakeOverOld); // [MQTT-3.1.4-3] closed with 0x8E
        Assert.True(plan.PublishWillNow);
        Assert.True(plan.Present); // the session continues on the new connection
        Assert.False(plan.DeferRecord); // a takeover stores its record before the CONNACK
    }

    [Fact]
    public void A_takeover_within_the_will_delay_should_keep_the_will_back_when_the_session_continues()
    {
        var plan = Attach(Attached(will: Will(delay: 30)), Info(), takeover: true);

        Assert.True(plan.TakeOverOld);
        Assert.False(plan.PublishWillNow); // MQTT-v5.0 3.1.2.5: the session continues within the will delay
    }

    [Fact]
    public void A_takeover_with_Clean_Start_should_send_a_delayed_will_at_once_since_the_old_session_ends()
    {
        var plan = Attach(Attached(will: Will(delay: 30)), Info(cleanStart: true), takeover: true);

        Assert.True(plan.PublishWillNow);
        Assert.True(plan.DiscardState);
    }

    [Fact]
    public void An_attach_to_an_offline_session_should_take_nothing_over_and_leave_its_will_to_its_timer()
    {
        var plan = Attach(Stored(will: Will(delay: 0)), Info());

        Assert.False(plan.TakeOverOld);
        Assert.False(plan.PublishWillNow);
    }

    [Fact]
    public void Clean_Start_should_discard_a_stored_session_and_answer_not_present()
    {
        var plan = Attach(Stored(), Info(cleanStart: true, expiry: 600));

        Assert.True(plan.DiscardState); // [MQTT-3.1.2-4]
        Assert.False(plan.Present); // [MQTT-3.2.2-2]
        Assert.True(plan.DeleteJournal);
        Assert.Equal(DiscardedIndex.RemoveRoutes, plan.DiscardIndex); // the new persistent session writes its own deadline
        Assert.True(plan.PersistentAfterDiscard); // the SessionCleared marker is journaled
        Assert.False(plan.BecomesPersistent);
        Assert.True(plan.StoreDeadline);
        Assert.False(plan.DeferRecord);
    }

    [Fact]
    public void Clean_Start_with_expiry_0_should_remove_every_index_row_of_the_discarded_session()
    {
        var plan = Attach(Stored(), Info(cleanStart: true, expiry: 0));

        Assert.Equal(DiscardedIndex.RemoveSession, plan.DiscardIndex);
        Assert.False(plan.PersistentAfterDiscard);
        Assert.False(plan.Persistent);
        Assert.False(plan.StoreDeadline);
        Assert.False(plan.WorthLogging);
    }

    [Fact]
    public void Clean_Start_should_discard_a_clean_session_with_subscriptions_without_touching_the_journal()
    {
        var clean = Attached(expiry: 0) with { HasState = false, Persistent = false, Journaled = false, Subscriptions = 2 };

        var plan = Attach(clean, Info(cleanStart: true, expiry: 0), takeover: true);

        Assert.True(plan.DiscardState);
        Assert.False(plan.DeleteJournal);
        Assert.Equal(DiscardedIndex.None, plan.DiscardIndex);
    }

    [Fact]
    public void Clean_Start_on_a_new_client_id_should_have_nothing_to_discard()
    {
        var none = new SessionFacts(0, 0, null, false, 0, false, false, false, false, 0, 0);

        var plan = Attach(none, Info(cleanStart: true, expiry: 600));

        Assert.False(plan.DiscardState);
        Assert.False(plan.DeleteJournal);
        Assert.False(plan.Present);
        Assert.True(plan.BecomesPersistent);
        Assert.False(plan.JournalSubscriptions); // a Clean Start has none to carry over
        Assert.True(plan.StoreDeadline);
    }

    [Fact]
    public void A_resume_of_a_stored_session_should_answer_present_and_keep_everything()
    {
        var plan = Attach(Stored(), Info());

        Assert.True(plan.Present); // [MQTT-3.2.2-3]
        Assert.False(plan.DiscardState);
        Assert.False(plan.DeleteJournal);
        Assert.False(plan.StoreDeadline); // the stored deadline is no later than the real one
        Assert.True(plan.WorthLogging);
    }

    [Fact]
    public void Clean_Start_0_without_a_session_should_answer_not_present()
    {
        var plan = Attach(Stored() with { HasState = false, Subscriptions = 0 }, Info());

        Assert.False(plan.Present); // [MQTT-3.2.2-3]: Session Present 0 when the server has no session
        Assert.True(plan.StoreDeadline);
    }

    [Fact]
    public void A_resume_with_a_shorter_expiry_should_store_the_earlier_deadline()
    {
        var plan = Attach(Stored(expiry: 3600), Info(expiry: 60));

        Assert.True(plan.StoreDeadline);
        Assert.False(plan.DeferRecord); // the expiry changes: the record goes before the CONNACK
    }

    [Fact]
    public void A_clean_session_resumed_as_a_persistent_one_should_journal_what_it_has()
    {
        var clean = Attached(expiry: 0) with { Persistent = false, Journaled = false };

        var plan = Attach(clean, Info(expiry: 600), takeover: true);

        Assert.True(plan.Present);
        Assert.True(plan.BecomesPersistent);
        Assert.True(plan.JournalSubscriptions);
        Assert.True(plan.StoreDeadline);
    }

    [Theory]
    [InlineData(100, 32)] // the server's limit
    [InlineData(5, 5)] // the client's Receive Maximum
    [InlineData(0, 1)] // never an empty window
    public void The_inflight_window_should_be_the_smaller_of_the_client_and_server_limits(int receiveMaximum, int expected)
    {
        Assert.Equal(expected, Attach(Stored(), Info(receiveMaximum: receiveMaximum)).InflightCapacity);
    }

    [Fact]
    public void A_normal_DISCONNECT_should_remove_the_will()
    {
        var plan = SessionLifecycle.PlanDetach(Attached(will: Will()), publishWill: false, newExpiry: null, Now);

        Assert.True(plan.DropWill); // [MQTT-3.14.4-3] reason 0x00
        Assert.Equal(WillTiming.Never, plan.Lost.Will);
    }

    [Fact]
    public void A_DISCONNECT_with_will_message_should_keep_the_will()
    {
        var plan = SessionLifecycle.PlanDetach(Attached(will: Will()), publishWill: true, newExpiry: null, Now);

        Assert.False(plan.DropWill); // reason 0x04
        Assert.Equal(WillTiming.Now, plan.Lost.Will);
    }

    [Fact]
    public void A_DISCONNECT_without_a_will_should_store_nothing()
    {
        var plan = SessionLifecycle.PlanDetach(Attached(), publishWill: false, newExpiry: 3600, Now);

        Assert.False(plan.DropWill);
        Assert.Null(plan.StoreExpiry); // the same expiry is not stored again
    }

    [Fact]
    public void A_DISCONNECT_should_change_the_expiry_the_session_waits_for()
    {
        var plan = SessionLifecycle.PlanDetach(Attached(expiry: 3600), publishWill: false, newExpiry: 10, Now);

        Assert.Equal(10u, plan.StoreExpiry); // MQTT-v5.0 3.14.2.2.2
        Assert.False(plan.Lost.EndSession);
        Assert.Equal(10u, plan.Lost.ExpireAfterSeconds);
        Assert.Equal(Now + 10_000, plan.Lost.DeadlineMs);
    }

    [Fact]
    public void A_DISCONNECT_with_expiry_0_should_end_the_session()
    {
        var plan = SessionLifecycle.PlanDetach(Attached(expiry: 3600), publishWill: false, newExpiry: 0, Now);

        Assert.Equal(0u, plan.StoreExpiry);
        Assert.True(plan.Lost.EndSession);
    }

    [Fact]
    public void A_session_with_expiry_0_should_end_when_its_connection_is_lost_and_send_its_will()
    {
        var plan = SessionLifecycle.PlanConnectionLost(Attached(expiry: 0, will: Will(delay: 30)), Now);

        Assert.True(plan.EndSession); // MQTT-v5.0 3.1.2.11.2
        Assert.Equal(WillTiming.Now, plan.Will); // the session ends before the delay: the will goes with it
    }

    [Fact]
    public void A_session_with_expiry_should_wait_for_its_client_from_the_moment_it_left()
    {
        var plan = SessionLifecycle.PlanConnectionLost(Attached(expiry: 120), Now);

        Assert.False(plan.EndSession);
        Assert.Equal(Now, plan.DetachedAtMs);
        Assert.True(plan.StoreDeadline);
        Assert.Equal(Now + 120_000, plan.DeadlineMs);
        Assert.Equal(120u, plan.ExpireAfterSeconds); // MQTT-v5.0 3.1.2.11
        Assert.Equal(WillTiming.Never, plan.Will);
    }

    [Fact]
    public void A_session_that_never_expires_should_start_no_expiry_timer()
    {
        var plan = SessionLifecycle.PlanConnectionLost(Attached(expiry: SessionLifecycle.NeverExpires), Now);

        Assert.Null(plan.ExpireAfterSeconds);
        Assert.Equal(long.MaxValue, plan.DeadlineMs);
    }

    [Fact]
    public void A_live_session_should_store_no_deadline()
    {
        var live = Attached(expiry: 120) with { Live = true, Persistent = false, Journaled = false };

        Assert.False(SessionLifecycle.PlanConnectionLost(live, Now).StoreDeadline);
    }

    [Fact]
    public void A_will_delay_shorter_than_the_expiry_should_time_the_will()
    {
        var plan = SessionLifecycle.PlanConnectionLost(Attached(expiry: 600, will: Will(delay: 30)), Now);

        Assert.Equal(WillTiming.AfterDelay, plan.Will);
        Assert.Equal(30u, plan.WillDelaySeconds);
    }

    [Fact]
    public void A_will_delay_longer_than_the_expiry_should_send_the_will_when_the_session_ends()
    {
        var plan = SessionLifecycle.PlanConnectionLost(Attached(expiry: 60, will: Will(delay: 600)), Now);

        Assert.Equal(WillTiming.AfterDelay, plan.Will); // MQTT-v5.0 3.1.3.2.2: whichever happens first
        Assert.Equal(plan.ExpireAfterSeconds, plan.WillDelaySeconds);
    }

    [Fact]
    public void A_will_without_delay_should_go_out_when_the_connection_is_lost()
    {
        Assert.Equal(WillTiming.Now, SessionLifecycle.PlanConnectionLost(Attached(expiry: 60, will: Will()), Now).Will);
    }

    [Fact]
    public void The_will_message_should_carry_the_client_id_and_expire_counted_from_its_publication()
    {
        var will = Will() with { Properties = MqttMessageProperties.Empty with { MessageExpiryInterval = 30 }, Retain = true };

        var message = SessionLifecycle.WillMessage(will, "device-1", Now);

        Assert.Equal(("will/t", MqttQoS.AtLeastOnce, true, "device-1"), (message.Topic, message.QoS, message.Retain, message.PublisherClientId));
        Assert.Equal(Now + 30_000, message.ExpiresAtUnixMs);
        Assert.Equal(0, SessionLifecycle.WillMessage(Will(), "device-1", Now).ExpiresAtUnixMs); // does not expire
    }

    [Fact]
    public void A_recovered_session_should_count_its_expiry_from_when_its_client_left()
    {
        Assert.Equal(TimeSpan.FromSeconds(40), SessionLifecycle.RemainingAfterRecovery(100, Now - 60_000, Now));
        Assert.Equal(TimeSpan.FromSeconds(100), SessionLifecycle.RemainingAfterRecovery(100, 0, Now)); // connected as its node died
        Assert.NotNull(SessionLifecycle.RemainingAfterRecovery(SessionLifecycle.NeverExpires, 1, Now));
    }

    [Fact]
    public void A_session_that_expired_while_no_node_held_it_should_be_removed()
    {
        Assert.Null(SessionLifecycle.RemainingAfterRecovery(60, Now - 60_000, Now));
        Assert.Null(SessionLifecycle.RemainingAfterRecovery(60, Now - 61_000, Now));
    }
}
