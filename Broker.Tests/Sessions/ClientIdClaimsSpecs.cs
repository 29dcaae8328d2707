using Broker.Sessions;

namespace Broker.Tests.Sessions;

/// <summary>
/// The rules of the client id registry (<see cref="ClientIdClaims{TRef}"/>, a pure type): who holds a client id, a
/// clean session's claim or the id's session entity, and what each CONNECT or claim does to that.
/// </summary>
public sealed class ClientIdClaimsSpecs
{
    private const string HostA = "host-a";
    private const string HostB = "host-b";

    [Fact]
    public void A_clean_attach_asks_whether_anything_is_stored_then_claims_the_id_and_a_repeated_attach_is_ignored()
    {
        var claims = new ClientIdClaims<string>();

        var first = claims.Attach("c1", "conn-1", beside: true, stored: null, newIncarnation: 11, HostA);
        Assert.Equal(ClaimAction.AskStored, first.Action);
        Assert.Equal(0, claims.Claims);

        var decided = claims.Attach("c1", "conn-1", beside: true, stored: false, newIncarnation: 11, HostA);
        Assert.Equal(ClaimAction.Start, decided.Action);
        Assert.Equal(11, decided.Incarnation);
        Assert.Null(decided.TakenOver);
        Assert.True(claims.TryGetClaim("c1", out var claim));
        Assert.Equal(("conn-1", 11L, HostA), (claim.Connection, claim.Incarnation, claim.Host));

        // The connection repeats its unanswered attach: nothing happens, nothing is asked.
        Assert.Equal(ClaimAction.Ignore, claims.Attach("c1", "conn-1", beside: true, stored: null, newIncarnation: 12, HostA).Action);
        Assert.Equal(11, claims.TryGetClaim("c1", out claim) ? claim.Incarnation : 0);
    }

    [Fact]
    public void A_second_clean_connect_takes_the_id_over_at_once_and_the_first_sessions_end_leaves_the_new_claim()
    {
        var claims = new ClientIdClaims<string>();
        claims.Attach("c1", "conn-1", beside: true, stored: false, newIncarnation: 1, HostA);

        var second = claims.Attach("c1", "conn-2", beside: true, stored: null, newIncarnation: 2, HostB);
        Assert.Equal(ClaimAction.Start, second.Action); // a claim means nothing is stored: no need to ask
        Assert.Equal("conn-1", second.TakenOver);
        Assert.Equal(2, second.Incarnation);

        Assert.False(claims.Ended("c1", 1)); // the first live session ends late: the second keeps the id
        Assert.True(claims.TryGetClaim("c1", out var claim));
        Assert.Equal("conn-2", claim.Connection);
        Assert.True(claims.Ended("c1", 2));
        Assert.Equal(0, claims.Claims);
    }

    [Fact]
    public void A_persistent_connect_takes_a_clean_claim_over_and_the_entity_holds_the_id_until_it_stops_having_seen_the_last_message()
    {
        var claims = new ClientIdClaims<string>();
        claims.Attach("c1", "conn-1", beside: true, stored: false, newIncarnation: 1, HostA);

        var persistent = claims.Attach("c1", "conn-2", beside: false, stored: null, newIncarnation: 2, HostA);
        Assert.Equal(ClaimAction.Forward, persistent.Action);
        Assert.Equal("conn-1", persistent.TakenOver);
        Assert.Equal(0, claims.Claims);
        Assert.Equal(1, claims.HeldByEntities);

        // Held by the entity: a clean connect goes to the entity too (it discards the stored session), numbered later.
        var clean = claims.Attach("c1", "conn-3", beside: true, stored: null, newIncarnation: 3, HostA);
        Assert.Equal(ClaimAction.Forward, clean.Action);
        Assert.Null(clean.TakenOver); // the entity closes what it holds
        Assert.True(clean.Seq > persistent.Seq);

        // An entity instance that saw only the first message stopped: it starts again for the second, so the id stays held.
        Assert.False(claims.EntityStopped("c1", persistent.Seq));
        Assert.Equal(ClaimAction.Forward, claims.Attach("c1", "conn-4", beside: true, stored: false, newIncarnation: 4, HostA).Action);

        var last = claims.Attach("c1", "conn-5", beside: true, stored: false, newIncarnation: 5, HostA);
        Assert.True(claims.EntityStopped("c1", last.Seq));
        Assert.Equal(0, claims.HeldByEntities);
        Assert.Equal(ClaimAction.AskStored, claims.Attach("c1", "conn-6", beside: true, stored: null, newIncarnation: 6, HostA).Action);
    }

    [Fact]
    public void A_clean_connect_to_an_id_with_a_stored_session_goes_to_its_entity()
    {
        var claims = new ClientIdClaims<string>();

        var decided = claims.Attach("c1", "conn-1", beside: true, stored: true, newIncarnation: 1, HostA);

        Assert.Equal(ClaimAction.Forward, decided.Action);
        Assert.Equal(0, claims.Claims);
        Assert.Equal(1, claims.HeldByEntities);
    }

    [Fact]
    public void A_live_session_reclaiming_its_id_is_granted_once_free_refused_when_another_connection_holds_it_and_sent_to_the_entity_that_holds_it()
    {
        var claims = new ClientIdClaims<string>();

        Assert.Equal(ClaimAction.AskStored, claims.Reclaim("c1", "conn-1", 7, stored: null, HostA).Action);
        Assert.Equal(ClaimAction.Granted, claims.Reclaim("c1", "conn-1", 7, stored: false, HostA).Action);
        Assert.Equal(ClaimAction.Granted, claims.Reclaim("c1", "conn-1", 7, stored: null, HostA).Action); // asked again: still its
        Assert.True(claims.TryGetClaim("c1", out var claim));
        Assert.Equal(7, claim.Incarnation);

        // Another connection took the id meanwhile: a late claim of the old live session is refused.
        claims.Attach("c2", "conn-2", beside: true, stored: false, newIncarnation: 8, HostB);
        Assert.Equal(ClaimAction.Refused, claims.Reclaim("c2", "conn-old", 3, stored: null, HostA).Action);

        // An id with a stored session: its entity decides.
        Assert.Equal(ClaimAction.Forward, claims.Reclaim("c3", "conn-3", 9, stored: true, HostA).Action);
        Assert.Equal(ClaimAction.Forward, claims.Reclaim("c3", "conn-3", 9, stored: null, HostA).Action);
    }

    [Fact]
    public void A_node_that_left_takes_the_claims_of_its_connections_with_it()
    {
        var claims = new ClientIdClaims<string>();
        claims.Attach("a1", "conn-a1", beside: true, stored: false, newIncarnation: 1, HostA);
        claims.Attach("a2", "conn-a2", beside: true, stored: false, newIncarnation: 2, HostA);
        claims.Attach("b1", "conn-b1", beside: true, stored: false, newIncarnation: 3, HostB);

        Assert.Equal([HostA, HostB], claims.Hosts().Order());
        Assert.Equal(2, claims.NodeRemoved(host => host == HostA));

        Assert.False(claims.TryGetClaim("a1", out _));
        Assert.True(claims.TryGetClaim("b1", out _));
        Assert.Equal([HostB], claims.Hosts());
    }
}
