using Broker.Configuration;
using Broker.Node.Operations;
using Broker.Tests.Cluster;
using Broker.Tests.EndToEnd;
using Broker.Tests.Operations;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using PuppeteerSharp;

namespace Broker.Tests.Browser;

/// <summary>
/// The dashboard in headless Chromium against the shared three-node cluster, served by node 1's operations endpoint:
/// it signs in with the management token, shows the three members and the test's clients on nodes 2 and 3, its
/// message-rate chart moves while the test publishes, the client search finds one client whose session it shows,
/// and its Disconnect button disconnects that client (v5 0x98). No console error; no horizontal scrolling on a
/// phone-sized screen. With DASHBOARD_SCREENSHOT=path.png it saves a screenshot there (docs/dashboard.png).
/// </summary>
[Collection(ThreeNodeClusterCollection.Name)]
public sealed class DashboardSpecs(ThreeNodeClusterFixture fixture)
{
    private readonly ClusterHarness _cluster = fixture.Cluster;

    [Fact]
    public async Task Dashboard_shows_the_cluster_charts_traffic_finds_a_client_and_disconnects_it()
    {
        var node1 = _cluster.Node(1);
        await using var http = await OperationsHttpServer.StartAsync(node1.Options with
        {
            Metrics = new MetricsOptions { Port = 0 },
            Management = new ManagementOptions { Token = OperationsHarness.Token },
        });
        http.Attach(node1);
        var id = E2E.Id("dash", MqttProtocolVersion.V500);
        var target = _cluster.NewClient();
        var kicked = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        target.DisconnectedAsync += e =>
        {
            kicked.TrySetResult(e);
            return Task.CompletedTask;
        };
        await target.ConnectAsync(_cluster.Options(3, MqttProtocolVersion.V500, id + "-device").WithCleanStart(true).WithSessionExpiryInterval(120).Build());
        await target.SubscribeAsync(id + "/cmd", MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await _cluster.ConnectAsync(2, id + "-publisher");

        await using var chromium = await HeadlessChromium.LaunchAsync();
        var errors = new List<string>();
        var page = await chromium.NewPageAsync(errors);
        await page.GoToAsync($"http://127.0.0.1:{http.EndPoint.Port}/dashboard");
        await page.TypeAsync("#token", OperationsHarness.Token);
        await page.ClickAsync("#login button[type=submit]");

        await HeadlessChromium.WaitForAsync(page, "document.getElementById('member-count').textContent === '(3 members)'");
        Assert.True(await page.EvaluateExpressionAsync<bool>("document.getElementById('login').hidden && getComputedStyle(document.getElementById('login')).display === 'none'"));
        await HeadlessChromium.WaitForAsync(page, "document.querySelectorAll('#nodes tbody tr').length === 3");
        await HeadlessChromium.WaitForAsync(page,
            $"[...document.querySelectorAll('#clients tbody tr')].some(r => r.dataset.clientId === '{id}-device')");
        Assert.Equal(3, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#charts .chart').length"));

        // Traffic while the page polls: the chart of node 2 (where the publisher is) draws a few points, the last above zero.
        using var publishing = new CancellationTokenSource();
        var traffic = Task.Run(async () =>
        {
            while (!publishing.IsCancellationRequested)
            {
                await publisher.PublishAsync(E2E.Message(id + "/cmd", "go", MqttQualityOfServiceLevel.AtLeastOnce));
                await Task.Delay(20);
            }
        });
        var node2 = Akka.Cluster.Cluster.Get(_cluster.Node(2).System).SelfAddress.ToString();
        await HeadlessChromium.WaitForAsync(page,
            $"[...document.querySelectorAll('#charts .chart')].some(c => c.dataset.node === '{node2}' && Number(c.dataset.points) >= 3 && Number(c.dataset.lastIn) > 0)",
            TimeSpan.FromSeconds(30));
        await publishing.CancelAsync();
        await traffic;

        // Search narrows the list to the one client; it shows the node it is connected to (3) and its subscription.
        await page.TypeAsync("#search", id + "-dev");
        await HeadlessChromium.WaitForAsync(page, "document.querySelectorAll('#clients tbody tr').length === 1");
        await page.ClickAsync("#clients tbody tr");
        await HeadlessChromium.WaitForAsync(page, "document.querySelector('#client [data-field=subscriptions]') !== null");
        Assert.Equal($"{id}/cmd (QoS 1)", await page.EvaluateExpressionAsync<string>("document.querySelector('#client [data-field=subscriptions]').textContent"));
        var node3 = Akka.Cluster.Cluster.Get(_cluster.Node(3).System).SelfAddress.ToString();
        Assert.Contains(":" + new Uri(node3.Replace("akka.tcp", "tcp")).Port,
            await page.EvaluateExpressionAsync<string>("document.querySelector('#client [data-field=\"connection node\"]').textContent"));

        if (Environment.GetEnvironmentVariable("DASHBOARD_SCREENSHOT") is { Length: > 0 } screenshot)
        {
            await page.ScreenshotAsync(screenshot, new ScreenshotOptions { FullPage = true });
        }

        await page.ClickAsync("#client button.danger");
        var closed = await kicked.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(MqttClientDisconnectReason.AdministrativeAction, closed.Reason);
        await HeadlessChromium.WaitForAsync(page, "document.querySelector('#client button.danger').textContent === 'Disconnected'");

        // A phone-sized screen: everything fits the width (wide tables scroll inside their own boxes).
        await page.SetViewportAsync(new ViewPortOptions { Width = 390, Height = 844 });
        var overflowing = await page.EvaluateExpressionAsync<string[]>(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))" +
            ".map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))");
        Assert.True(overflowing.Length == 0, "wider than the screen: " + string.Join(", ", overflowing));
        Assert.True(await page.EvaluateExpressionAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
