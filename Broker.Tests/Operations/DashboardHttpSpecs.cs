using System.Net;
using Broker.Tests.EndToEnd;
using MQTTnet.Formatter;

namespace Broker.Tests.Operations;

/// <summary>
/// The dashboard over plain HTTP: its three assets come from the node with a same-origin content security policy,
/// only when the management API is on; the numbers it shows (<c>/api/cluster/stats</c>) need the token.
/// </summary>
public sealed class DashboardHttpSpecs
{
    [Fact]
    public async Task Dashboard_assets_are_served_by_the_node_and_its_numbers_need_the_token()
    {
        await using var ops = await OperationsHarness.StartAsync();
        foreach (var (path, type) in new[]
                 {
                     ("/dashboard", "text/html"), ("/dashboard/", "text/html"), ("/dashboard/dashboard.js", "text/javascript"),
                     ("/dashboard/dashboard.css", "text/css"),
                 })
        {
            using var response = await ops.Client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith(type, response.Content.Headers.ContentType!.ToString());
            Assert.StartsWith("default-src 'self'", response.Headers.GetValues("Content-Security-Policy").Single());
            var body = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain("http://", body.Replace("http://www.w3.org/2000/svg", ""));
            Assert.DoesNotContain("https://", body);
        }

        using (var anonymous = await ops.Client.GetAsync("/api/cluster/stats"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        await ops.Broker.ConnectAsync(MqttProtocolVersion.V500, "dashboard-http-client");
        using var stats = await ManagementApiSpecs.GetJsonAsync(ops, "/api/cluster/stats");
        var node = Assert.Single(stats.RootElement.GetProperty("nodes").EnumerateArray());
        Assert.Equal(1, node.GetProperty("connections").GetInt64());
        Assert.Equal(1, node.GetProperty("sessionsOnline").GetInt64());
        Assert.Equal(0, node.GetProperty("drops").GetProperty("queue_full").GetInt64());
    }

    [Fact]
    public async Task Without_a_management_token_there_is_no_dashboard()
    {
        await using var ops = await OperationsHarness.StartAsync(o => o with { Management = new Configuration.ManagementOptions() });
        using var response = await ops.Client.GetAsync("/dashboard");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
