using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Sessions;

namespace Broker.Tests.Sessions;

/// <summary>
/// When a resume may answer its CONNACK before its attach record is stored (<see cref="SessionLifecycle.MayDeferAttachRecord"/>),
/// and how long the record may wait (<see cref="SessionLifecycle.AttachRecordDelay"/>).
/// </summary>
public sealed class AttachRecordDeferralSpecs
{
    private const long Now = 1_800_000_000_000;

    /// <summary>A stored persistent session (expiry 400 s, so a quarter is 100 s) whose client left 60 s ago.</summary>
    private static readonly SessionFacts Idle = new(400, Now - 60_000, null, HasState: true, Subscriptions: 1, Persistent: true,
        Journaled: true, Live: false, AttachRecordPending: false, Queued: 0, Inflight: 0);

    private static ConnectionInfo Info(bool cleanStart = false, uint expiry = 400, MqttWill? will = null) =>
        new(MqttProtocolVersion.V500, cleanStart, expiry, will, 100);

    private static bool MayDefer(SessionFacts s, ConnectionInfo? info = null, bool present = true, bool becomesPersistent = false,
        bool wasConnected = false, long now = Now) =>
        SessionLifecycle.MayDeferAttachRecord(s, info ?? Info(), present, becomesPersistent, wasConnected, now);

    private static readonly MqttWill AWill = new() { Topic = "w", Payload = new byte[] { 1 } };

    [Fact]
    public void A_plain_resume_within_a_quarter_of_the_expiry_should_defer_its_record()
    {
        Assert.True(MayDefer(Idle));
        Assert.True(MayDefer(Idle with { DetachedAtMs = Now - 100_000 })); // exactly a quarter
    }

    [Fact]
    public void A_resume_after_a_quarter_of_the_expiry_should_store_its_record_first()
    {
        Assert.False(MayDefer(Idle with { DetachedAtMs = Now - 100_001 }));
    }

    [Fact]
    public void A_departure_in_the_future_of_this_clock_should_store_its_record_first()
    {
        Assert.False(MayDefer(Idle with { DetachedAtMs = Now + 1 }));
    }

    [Fact]
    public void A_session_that_never_expires_should_defer_however_long_its_client_was_away()
    {
        var never = Idle with { ExpirySeconds = SessionLifecycle.NeverExpires, DetachedAtMs = 1 };

        Assert.True(MayDefer(never, Info(expiry: SessionLifecycle.NeverExpires)));
    }

    public static TheoryData<string> Blockers => new()
    {
        "not present", "not persistent", "not journaled", "live", "becomes persistent", "taken over", "record pending",
        "Clean Start", "new will", "stored will", "other expiry", "departure unknown", "queued", "in flight",
    };

    [Theory]
    [MemberData(nameof(Blockers))]
    public void Anything_beyond_a_plain_resume_should_store_its_record_before_the_CONNACK(string blocker)
    {
        var s = Idle;
        var info = Info();
        bool present = true, becomesPersistent = false, wasConnected = false;
        switch (blocker)
        {
            case "not present": present = false; break;
            case "not persistent": s = s with { Persistent = false }; break;
            case "not journaled": s = s with { Journaled = false }; break;
            case "live": s = s with { Live = true }; break;
            case "becomes persistent": becomesPersistent = true; break;
            case "taken over": wasConnected = true; break;
            case "record pending": s = s with { AttachRecordPending = true }; break;
            case "Clean Start": info = Info(cleanStart: true); break;
            case "new will": info = Info(will: AWill); break;
            case "stored will": s = s with { Will = AWill }; break;
            case "other expiry": info = Info(expiry: 401); break;
            case "departure unknown": s = s with { DetachedAtMs = 0 }; break;
            case "queued": s = s with { Queued = 1 }; break;
            case "in flight": s = s with { Inflight = 1 }; break;
        }

        Assert.True(MayDefer(Idle)); // the baseline defers
        Assert.False(MayDefer(s, info, present, becomesPersistent, wasConnected));
    }

    [Fact]
    public void An_attach_plan_should_defer_only_a_plain_resume()
    {
        Assert.True(SessionLifecycle.PlanAttach(Idle, Info(), false, 32, Now).DeferRecord);
        Assert.False(SessionLifecycle.PlanAttach(Idle with { DetachedAtMs = 0 }, Info(), true, 32, Now).DeferRecord);
    }

    [Theory]
    [InlineData(40u, 0.0, 5_000)] // a quarter of 40 s is 10 s: at least half of it
    [InlineData(40u, 1.0, 10_000)] // at most all of it
    [InlineData(3600u, 0.0, 30_000)] // a quarter of an hour is capped at a minute
    [InlineData(3600u, 0.5, 45_000)]
    [InlineData(uint.MaxValue, 1.0, 60_000)]
    public void A_deferred_record_should_be_stored_within_a_quarter_of_the_expiry_and_a_minute(uint expiry, double random, int expectedMs)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), SessionLifecycle.AttachRecordDelay(expiry, random));
    }
}
