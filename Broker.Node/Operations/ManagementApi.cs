using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Broker.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Broker.Node.Operations;

/// <summary>
/// The management API, served under /api only when <c>Management:Token</c> is set; every request needs
/// <c>Authorization: Bearer &lt;token&gt;</c> (otherwise 401).
/// <list type="bullet">
/// <item><c>GET /api/clients</c>: clients connected anywhere in the cluster (each node's registry is asked).</item>
/// <item><c>GET /api/clients/{id}</c>: the client's connection (if connected) and its session with subscriptions.</item>
/// <item><c>POST /api/clients/{id}/disconnect</c>: closes its connection (v5 DISCONNECT 0x98 Administrative action).</item>
/// <item><c>GET /api/cluster/members</c>: the cluster members as this node sees them.</item>
/// <item><c>GET /api/cluster/stats</c>: every Up node's gauges and counters (<see cref="NodeStats"/>), for the dashboard.</item>
/// </list>
/// </summary>
public static class ManagementApi
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    public static void Map(WebApplication app, string token, Func<BrokerServer?> broker)
    {
        var expected = Encoding.UTF8.GetBytes(token);
        var api = app.MapGroup("/api");
        api.AddEndpointFilter(async (context, next) =>
        {
            // "Authorization: Bearer <token>" (the scheme is case-insensitive, RFC 9110 11.1); compared in constant time.
            var header = context.HttpContext.Request.Headers.Authorization.ToString();
            var given = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                ? Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim())
                : [];
            if (!CryptographicOperations.FixedTimeEquals(given, expected))
            {
                context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
                return Results.Json(new { error = "missing or wrong bearer token" }, statusCode: StatusCodes.Status401Unauthorized);
            }

            return broker() is null
                ? Results.Json(new { error = "broker not started" }, statusCode: StatusCodes.Status503ServiceUnavailable)
                : await next(context).ConfigureAwait(false);
        });

        api.MapGet("/clients", async () =>
        {
            var (clients, unanswered) = await AskEveryNodeAsync<ClientList>(broker()!, ListClients.Instance).ConfigureAwait(false);
            var list = clients.SelectMany(c => c.Clients).OrderBy(c => c.ClientId, StringComparer.Ordinal).ToList();
            return Results.Json(new { count = list.Count, clients = list, unansweredNodes = unanswered });
        });

        api.MapGet("/clients/{clientId}", async (string clientId) =>
        {
            var server = broker()!;
            var (lists, unanswered) = await AskEveryNodeAsync<ClientList>(server, ListClients.Instance).ConfigureAwait(false);
            var connection = lists.SelectMany(l => l.Clients).FirstOrDefault(c => c.ClientId == clientId);
            SessionInfo? session = null;
            try
            {
                session = await server.Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo(clientId), AskTimeout).ConfigureAwait(false);
            }
            catch (AskTimeoutException)
            {
                // Reported as "session": null; the connection part still answers.
            }

            if (connection is null && session is { Exists: false })
            {
                return Results.Json(new { error = $"no client or session '{clientId}'" }, statusCode: StatusCodes.Status404NotFound);
            }

            return Results.Json(new { clientId, connected = connection is not null, connection, session, unansweredNodes = unanswered });
        });

        api.MapPost("/clients/{clientId}/disconnect", async (string clientId) =>
        {
            var (results, unanswered) = await AskEveryNodeAsync<KickResult>(broker()!, new KickClient(clientId)).ConfigureAwait(false);
            var found = results.Any(r => r.Found);
            return Results.Json(
                new { clientId, disconnected = found, unansweredNodes = unanswered },
                statusCode: found ? StatusCodes.Status200OK : StatusCodes.Status404NotFound);
        });

        api.MapGet("/cluster/stats", async () =>
        {
            var (stats, unanswered) = await AskEveryNodeAsync<NodeStats>(broker()!, GetNodeStats.Instance).ConfigureAwait(false);
            return Results.Json(new { nodes = stats.OrderBy(n => n.Address, StringComparer.Ordinal), unansweredNodes = unanswered });
        });

        api.MapGet("/cluster/members", () =>
        {
            var cluster = Akka.Cluster.Cluster.Get(broker()!.System);
            var state = cluster.State;
            var members = state.Members.Select(m => new
            {
                address = m.Address.ToString(),
                status = m.Status.ToString(),
                roles = m.Roles.ToArray(),
                reachable = !state.Unreachable.Contains(m),
                self = m.Address == cluster.SelfAddress,
                leader = m.Address == state.Leader,
            }).ToList();
            return Results.Json(new { count = members.Count, members });
        });
    }

    /// <summary>Asks the client registry of every member that is Up (this node included); lists who did not answer.</summary>
    private static async Task<(List<T> Answers, List<string> Unanswered)> AskEveryNodeAsync<T>(BrokerServer server, object message)
    {
        var members = Akka.Cluster.Cluster.Get(server.System).State.Members.Where(m => m.Status == MemberStatus.Up).ToList();
        var asks = members.Select(m => server.System
            .ActorSelection(new RootActorPath(m.Address) / "user" / ClientRegistryActor.Name)
            .Ask<T>(message, AskTimeout)).ToList();
        var answers = new List<T>();
        var unanswered = new List<string>();
        for (var i = 0; i < asks.Count; i++)
        {
            try
            {
                answers.Add(await asks[i].ConfigureAwait(false));
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                unanswered.Add(members[i].Address.ToString());
            }
        }

        return (answers, unanswered);
    }
}
