using System.Net.WebSockets;
using System.Text;
using Broker.Tests.EndToEnd;
using Broker.Tests.Robustness;
using MQTTnet;
using MQTTnet.Formatter;

namespace Broker.Tests.Transport;

/// <summary>
/// MQTT over WebSocket against a real broker: MQTTnet's WebSocket client over ws:// and wss://, a raw
/// System.Net.WebSockets client for the framing rules (packets spanning frames, several packets in one frame, text
/// and oversized messages, origins, subprotocols), and takeover between a WebSocket and a TCP connection.
/// </summary>
public sealed class WebSocketSpecs(WebSocketFixture fixture) : IClassFixture<WebSocketFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(MqttProtocolVersion.V311, false)]
    [InlineData(MqttProtocolVersion.V500, false)]
    [InlineData(MqttProtocolVersion.V311, true)]
    [InlineData(MqttProtocolVersion.V500, true)]
    public async Task MQTTnet_over_WebSocket_should_subscribe_publish_and_receive(MqttProtocolVersion version, bool tls)
    {
        var id = E2E.Id(tls ? "wss" : "ws", version);
        var subscriber = await fixture.ConnectAsync(version, id + "-sub", tls);
        var received = new MessageCollector(subscriber);
        await E2E.SubscribeAsync(subscriber, id + "/+");
        var publisher = await fixture.ConnectAsync(version, id + "-pub", tls);

        await publisher.PublishAsync(id + "/a", "over websocket");
        // A payload larger than one receive chunk (16 KB) and than one TCP segment crosses several reads.
        var large = new string('x', 40_000);
        await publisher.PublishAsync(id + "/b", large);

        var messages = await received.WaitForAsync(2);
        Assert.Equal(["over websocket", large], E2E.Texts(messages));
    }

    [Fact]
    public async Task WebSocket_and_TCP_clients_should_reach_each_other()
    {
        var id = E2E.Id("ws-tcp", MqttProtocolVersion.V500);
        var wsClient = await fixture.ConnectAsync(MqttProtocolVersion.V500, id + "-ws");
        var tcpClient = await fixture.Broker.ConnectAsync(MqttProtocolVersion.V311, id + "-tcp");
        var atWs = new MessageCollector(wsClient);
        var atTcp = new MessageCollector(tcpClient);
        await E2E.SubscribeAsync(wsClient, id + "/to-ws");
        await E2E.SubscribeAsync(tcpClient, id + "/to-tcp");

        await tcpClient.PublishAsync(id + "/to-ws", "from tcp");
        await wsClient.PublishAsync(id + "/to-tcp", "from ws");

        Assert.Equal("from tcp", E2E.Text((await atWs.WaitForAsync(1))[0]));
        Assert.Equal("from ws", E2E.Text((await atTcp.WaitForAsync(1))[0]));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_WebSocket_client_and_a_TCP_client_with_the_same_client_id_take_each_other_over(bool webSocketFirst)
    {
        var id = E2E.Id("ws-takeover", MqttProtocolVersion.V500);
        var wsOptions = fixture.Options(MqttProtocolVersion.V500, id).WithCleanStart(false).WithSessionExpiryInterval(300);
        var tcpOptions = fixture.Broker.Options(MqttProtocolVersion.V500, id).WithCleanStart(false).WithSessionExpiryInterval(300);
        var (firstOptions, secondOptions) = webSocketFirst ? (wsOptions, tcpOptions) : (tcpOptions, wsOptions);

        var first = fixture.Broker.NewClient();
        var taken = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.DisconnectedAsync += e =>
        {
            taken.TrySetResult(e);
            return Task.CompletedTask;
        };
        await first.ConnectAsync(firstOptions.Build());
        await E2E.SubscribeAsync(first, id + "/t");

        var second = fixture.Broker.NewClient();
        var received = new MessageCollector(second);
        var result = await second.ConnectAsync(secondOptions.Build());

        Assert.True(result.IsSessionPresent);
        Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, (await taken.Task.WaitAsync(Timeout)).Reason);
        var publisher = await fixture.Broker.ConnectAsync(MqttProtocolVersion.V311, id + "-pub");
        await publisher.PublishAsync(id + "/t", "to the new connection");
        Assert.Equal("to the new connection", E2E.Text((await received.WaitForAsync(1))[0]));
    }

    [Fact]
    public async Task Packets_may_span_frames_and_a_frame_may_hold_several_packets()
    {
        using var socket = await fixture.OpenRawAsync();
        Assert.Equal("mqtt", socket.SubProtocol);
        var id = E2E.Id("ws-raw", MqttProtocolVersion.V311);
        var connect = RawMqtt.Connect(id);

        // CONNECT in three frames of one message, then in a second message the rest... each byte boundary is arbitrary.
        await socket.SendAsync(connect.AsMemory(0, 3), WebSocketMessageType.Binary, false, default);
        await socket.SendAsync(connect.AsMemory(3, 5), WebSocketMessageType.Binary, false, default);
        await socket.SendAsync(connect.AsMemory(8), WebSocketMessageType.Binary, true, default);
        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, await ReceiveBytesAsync(socket, 4));

        // SUBSCRIBE and PINGREQ in one frame: SUBACK and PINGRESP (the PINGRESP may come first: the SUBACK waits for
        // the session to store the subscription).
        var topic = Encoding.UTF8.GetBytes(id + "/t");
        var subscribe = Packet(0x82, [0x00, 0x01, (byte)(topic.Length >> 8), (byte)topic.Length, .. topic, 0x00]);
        await socket.SendAsync(subscribe.Append((byte)0xC0).Append((byte)0x00).ToArray(), WebSocketMessageType.Binary, true, default);
        var acks = Convert.ToHexString(await ReceiveBytesAsync(socket, 7));
        Assert.True(acks is "9003000100D000" or "D0009003000100", acks);

        // A PUBLISH to its own subscription split across two messages, the second also holding a PINGREQ.
        var publish = Packet(0x30, [(byte)(topic.Length >> 8), (byte)topic.Length, .. topic, .. "hi"u8.ToArray()]);
        await socket.SendAsync(publish.AsMemory(0, 4), WebSocketMessageType.Binary, true, default);
        await socket.SendAsync(publish.Skip(4).Append((byte)0xC0).Append((byte)0x00).ToArray(), WebSocketMessageType.Binary, true, default);
        // (The PINGRESP is answered at once, the PUBLISH comes back through routing: either may come first.)
        var answers = Convert.ToHexString(await ReceiveBytesAsync(socket, publish.Length + 2));
        var (expected, pong) = (Convert.ToHexString(publish), "D000");
        Assert.True(answers == expected + pong || answers == pong + expected, answers);
    }

    [Fact]
    public async Task The_mqttv3_1_subprotocol_is_accepted_and_an_unknown_one_refused()
    {
        using var legacy = await fixture.OpenRawAsync(subProtocol: "mqttv3.1");
        Assert.Equal("mqttv3.1", legacy.SubProtocol);

        var refused = await Assert.ThrowsAsync<WebSocketException>(() => fixture.OpenRawAsync(subProtocol: "graphql-ws"));
        Assert.Contains("400", refused.Message + refused.InnerException?.Message);
    }

    [Fact]
    public async Task An_origin_outside_AllowedOrigins_is_refused_and_a_listed_one_accepted()
    {
        using var allowed = await fixture.OpenRawAsync(origin: WebSocketFixture.AllowedOrigin);
        Assert.Equal(WebSocketState.Open, allowed.State);

        var refused = await Assert.ThrowsAsync<WebSocketException>(() => fixture.OpenRawAsync(origin: "http://evil.test"));
        Assert.Contains("403", refused.Message + refused.InnerException?.Message);
    }

    [Fact]
    public async Task A_text_frame_closes_that_connection_with_1003_and_no_other()
    {
        var bystander = await fixture.ConnectAsync(MqttProtocolVersion.V500, E2E.Id("ws-bystander", MqttProtocolVersion.V500));
        using var socket = await fixture.OpenRawAsync();
        await socket.SendAsync(RawMqtt.Connect(E2E.Id("ws-text", MqttProtocolVersion.V311)), WebSocketMessageType.Binary, true, default);
        await ReceiveBytesAsync(socket, 4);

        await socket.SendAsync("{\"hello\":1}"u8.ToArray(), WebSocketMessageType.Text, true, default);

        Assert.Equal(WebSocketCloseStatus.InvalidMessageType, await ReceiveCloseAsync(socket));
        await AssertStillServesAsync(bystander);
    }

    [Fact]
    public async Task A_message_over_MaxMessageSize_closes_that_connection_with_1009_and_no_other()
    {
        var bystander = await fixture.ConnectAsync(MqttProtocolVersion.V311, E2E.Id("ws-bystander", MqttProtocolVersion.V311));
        using var socket = await fixture.OpenRawAsync();
        await socket.SendAsync(RawMqtt.Connect(E2E.Id("ws-big", MqttProtocolVersion.V311)), WebSocketMessageType.Binary, true, default);
        await ReceiveBytesAsync(socket, 4);

        // The start of a 100 000-byte PUBLISH (allowed by Mqtt:MaxPacketSize), fragmented so that no single frame
        // is large: the limit is on the message.
        var chunk = new byte[16 * 1024];
        new byte[] { 0x30, 0xA0, 0x8D, 0x06, 0x00, 0x01, (byte)'t' }.CopyTo(chunk, 0);
        await socket.SendAsync(chunk, WebSocketMessageType.Binary, false, default);
        chunk = new byte[16 * 1024];
        for (var i = 0; i < 4; i++)
        {
            await socket.SendAsync(chunk, WebSocketMessageType.Binary, false, default);
        }

        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await ReceiveCloseAsync(socket));
        await AssertStillServesAsync(bystander);
    }

    [Fact]
    public async Task A_malformed_MQTT_packet_over_WebSocket_closes_that_connection()
    {
        using var socket = await fixture.OpenRawAsync();
        // A CONNECT with protocol name "MQTX": [MQTT-3.1.2-1] the server may close without CONNACK (3.1.1).
        var connect = RawMqtt.Connect(E2E.Id("ws-malformed", MqttProtocolVersion.V311));
        connect[7] = (byte)'X';
        await socket.SendAsync(connect, WebSocketMessageType.Binary, true, default);

        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(Timeout);
        var result = await socket.ReceiveAsync(buffer, timeout.Token);
        while (result.MessageType == WebSocketMessageType.Binary)
        {
            result = await socket.ReceiveAsync(buffer, timeout.Token); // a CONNACK with a refusal code may come first
        }

        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
    }

    [Fact]
    public async Task A_plain_HTTP_request_gets_400_and_another_path_404()
    {
        using var http = new HttpClient();
        var onPath = await http.GetAsync($"http://127.0.0.1:{fixture.Broker.Server.WebSocketEndPoint!.Port}/mqtt");
        var elsewhere = await http.GetAsync($"http://127.0.0.1:{fixture.Broker.Server.WebSocketEndPoint!.Port}/other");

        Assert.Equal(System.Net.HttpStatusCode.BadRequest, onPath.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, elsewhere.StatusCode);
    }

    [Fact]
    public async Task WebSocket_connections_count_in_the_connection_metrics()
    {
        var before = fixture.Broker.Server.Context.Metrics.Connections;
        var client = await fixture.ConnectAsync(MqttProtocolVersion.V500, E2E.Id("ws-metrics", MqttProtocolVersion.V500));
        Assert.True(fixture.Broker.Server.Context.Metrics.Connections >= before + 1);
        await client.DisconnectAsync();
    }

    internal static byte[] Packet(byte first, byte[] body)
    {
        Assert.True(body.Length < 128);
        return [first, (byte)body.Length, .. body];
    }

    /// <summary>Reads binary messages until <paramref name="count"/> bytes arrived (the broker may split or join them).</summary>
    internal static async Task<byte[]> ReceiveBytesAsync(WebSocket socket, int count)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var result = new List<byte>();
        var buffer = new byte[4096];
        while (result.Count < count)
        {
            var received = await socket.ReceiveAsync(buffer.AsMemory(0, count - result.Count), timeout.Token);
            Assert.Equal(WebSocketMessageType.Binary, received.MessageType);
            result.AddRange(buffer.AsSpan(0, received.Count).ToArray());
        }

        return result.ToArray();
    }

    internal static async Task<WebSocketCloseStatus?> ReceiveCloseAsync(WebSocket socket)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var buffer = new byte[1024];
        while (true)
        {
            var received = await socket.ReceiveAsync(buffer, timeout.Token);
            if (received.MessageType == WebSocketMessageType.Close)
            {
                return socket.CloseStatus;
            }
        }
    }

    private async Task AssertStillServesAsync(IMqttClient client)
    {
        Assert.True(client.IsConnected);
        var topic = E2E.Id("ws-still", MqttProtocolVersion.V500);
        var received = new MessageCollector(client);
        await E2E.SubscribeAsync(client, topic);
        await client.PublishAsync(topic, "still here");
        Assert.Equal("still here", E2E.Text((await received.WaitForAsync(1))[0]));
    }
}

/// <summary>A graceful stop closes WebSocket clients as it closes TCP ones: v5 DISCONNECT 0x8B, then the close.</summary>
public sealed class WebSocketShutdownSpecs
{
    [Fact]
    public async Task A_graceful_stop_sends_a_WebSocket_v5_client_DISCONNECT_server_shutting_down()
    {
        var broker = await BrokerHarness.StartAsync(o => o with
        {
            Mqtt = o.Mqtt with { WebSocket = new Broker.Configuration.WebSocketOptions { Port = 0 } },
        });
        // Not made by the harness, which would disconnect it itself before stopping the broker.
        using var client = new MqttClientFactory().CreateMqttClient();
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        await client.ConnectAsync(new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri($"ws://127.0.0.1:{broker.Server.WebSocketEndPoint!.Port}/mqtt"))
            .WithProtocolVersion(MqttProtocolVersion.V500).WithClientId("ws-shutdown").WithTimeout(TimeSpan.FromSeconds(10)).Build());

        await broker.DisposeAsync();

        var closed = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(MqttClientDisconnectReason.ServerShuttingDown, closed.Reason);
    }
}
