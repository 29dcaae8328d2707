using Broker.Sessions;

namespace Broker.Tests.Sessions;

/// <summary>
/// When a persistent session may run beside its client's connection on another node (SessionLifecycle.FollowsClient):
/// only when it is persistent and journaled, the connection is elsewhere, the option is on, and nothing is under way
/// whose answer would come back to the entity or whose state a snapshot would miss.
/// </summary>
public sealed class SessionMoveRulesSpecs
{
    private static readonly MoveFacts Idle = new(0, false, false, 0, 0, 0, 0, 0, false, 0);

    [Fact]
    public void An_idle_journaled_persistent_session_follows_a_client_on_another_node()
    {
        Assert.True(SessionLifecycle.FollowsClient(enabled: true, persistent: true, journaled: true, connectionOnOtherNode: true, Idle));
    }

    [Theory]
    [InlineData(false, true, true, true)] // switched off
    [InlineData(true, false, true, true)] // a clean session (clean sessions run beside their connection another way)
    [InlineData(true, true, false, true)] // nothing journaled: there is nothing for the other node to write after
    [InlineData(true, true, true, false)] // the connection is on the entity's node: it is beside it already
    public void Otherwise_the_session_stays_with_its_entity(bool enabled, bool persistent, bool journaled, bool elsewhere)
    {
        Assert.False(SessionLifecycle.FollowsClient(enabled, persistent, journaled, elsewhere, Idle));
    }

    public static TheoryData<string, MoveFacts> WorkUnderWay => new()
    {
        { "a write not yet stored", Idle with { PendingWrites = 1 } },
        { "ending", Idle with { Ending = true } },
        { "fetching payloads after recovery", Idle with { FetchingPayloads = true } },
        { "a payload hold asked of a topic", Idle with { AwaitingPayloadHolds = 1 } },
        { "a SUBSCRIBE whose routes are being stored", Idle with { PendingSubscribes = 1 } },
        { "an inbound QoS 2 message being routed", Idle with { InboundRouting = 1 } },
        { "an inbound QoS 2 message pending", Idle with { InboundPending = 2 } },
        { "routes announced again after a wake", Idle with { WakeRegistrations = 1 } },
        { "an attach record not yet stored", Idle with { AttachRecordPending = true } },
        { "a publisher held while the queue is full", Idle with { HeldPublishers = 3 } },
    };

    [Fact]
    public void Inbound_QoS_2_routing_under_way_holds_a_move_out_but_not_a_hand_back()
    {
        // Journaled as pending, routed again by the entity once the state is back (its routing may wait for a node that is gone).
        var routing = Idle with { InboundRouting = 1, InboundPending = 1 };
        Assert.False(SessionLifecycle.QuietForMove(routing));
        Assert.True(SessionLifecycle.QuietForReturn(routing));
        Assert.False(SessionLifecycle.QuietForReturn(routing with { PendingWrites = 1 }));
        Assert.False(SessionLifecycle.QuietForReturn(Idle with { AwaitingPayloadHolds = 1 }));
    }

    [Theory]
    [MemberData(nameof(WorkUnderWay))]
    public void Work_under_way_keeps_the_session_where_it_is(string what, MoveFacts work)
    {
        Assert.True(SessionLifecycle.QuietForMove(Idle), "idle");
        Assert.False(SessionLifecycle.QuietForMove(work), what);
        Assert.False(SessionLifecycle.FollowsClient(true, true, true, true, work), what);
    }
}
