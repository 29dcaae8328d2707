using Broker.Sessions;

namespace Broker.Tests.Sessions;

/// <summary>When an idle offline session may leave memory (<see cref="SessionLifecycle.MayPassivate"/>).</summary>
public sealed class PassivationDecisionSpecs
{
    private const long Now = 1_800_000_000_000;
    private const long DueSoon = 7_000;

    /// <summary>An offline persistent session with nothing in hand, an hour from expiry, its deadline stored.</summary>
    private static readonly PassivationFacts Idle = new(Held: false, Ending: false, Unused: false, Persistent: true, WorkInHand: false,
        WillPending: false, DeadlineMs: Now + 3_600_000, DeadlineStoredMs: Now + 3_600_000);

    private static PassivationDecision Decide(PassivationFacts p) => SessionLifecycle.MayPassivate(p, Now, DueSoon);

    [Fact]
    public void An_idle_offline_session_with_its_deadline_stored_should_passivate()
    {
        Assert.Equal(PassivationDecision.Passivate, Decide(Idle));
    }

    [Fact]
    public void An_idle_offline_session_should_store_its_deadline_before_it_passivates()
    {
        // The sweeper finds a passivated session only by its stored deadline, which must be no later than the real one.
        Assert.Equal(PassivationDecision.StoreDeadlineThenPassivate, Decide(Idle with { DeadlineStoredMs = 0 }));
        Assert.Equal(PassivationDecision.StoreDeadlineThenPassivate, Decide(Idle with { DeadlineStoredMs = Now + 3_700_000 }));
    }

    [Fact]
    public void A_session_that_never_expires_should_passivate_once_its_deadline_is_removed()
    {
        var never = Idle with { DeadlineMs = long.MaxValue, DeadlineStoredMs = long.MaxValue };

        Assert.Equal(PassivationDecision.Passivate, Decide(never));
        Assert.Equal(PassivationDecision.StoreDeadlineThenPassivate, Decide(never with { DeadlineStoredMs = 0 }));
    }

    [Fact]
    public void A_held_session_should_stay_whatever_else_holds()
    {
        Assert.Equal(PassivationDecision.StayHeld, Decide(Idle with { Held = true, Ending = true, Unused = true }));
    }

    [Fact]
    public void An_ending_session_should_be_left_to_end()
    {
        Assert.Equal(PassivationDecision.Ending, Decide(Idle with { Ending = true }));
    }

    [Fact]
    public void An_unused_entity_should_leave_at_once()
    {
        Assert.Equal(PassivationDecision.LeaveUnused, Decide(Idle with { Unused = true, Persistent = false }));
    }

    [Fact]
    public void A_session_that_is_not_journaled_should_stay_since_nothing_could_bring_it_back()
    {
        Assert.Equal(PassivationDecision.NotYet, Decide(Idle with { Persistent = false }));
    }

    [Fact]
    public void A_session_with_work_in_hand_should_not_passivate_yet()
    {
        Assert.Equal(PassivationDecision.NotYet, Decide(Idle with { WorkInHand = true }));
    }

    [Fact]
    public void A_session_with_a_delayed_will_should_stay_to_send_it()
    {
        Assert.Equal(PassivationDecision.NotYet, Decide(Idle with { WillPending = true }));
    }

    [Fact]
    public void A_session_due_to_expire_within_the_sweepers_reach_should_stay_and_end_by_its_own_timer()
    {
        Assert.Equal(PassivationDecision.NotYet, Decide(Idle with { DeadlineMs = Now + DueSoon - 1, DeadlineStoredMs = Now + DueSoon - 1 }));
        Assert.Equal(PassivationDecision.Passivate, Decide(Idle with { DeadlineMs = Now + DueSoon, DeadlineStoredMs = Now + DueSoon }));
    }
}
