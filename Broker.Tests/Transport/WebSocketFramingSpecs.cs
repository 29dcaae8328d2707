using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Broker.Tests.EndToEnd;
using MQTTnet.Formatter;

namespace Broker.Tests.Transport;

/// <summary>
/// Malformed WebSocket frames, written byte by byte over a plain TCP socket after a hand-made upgrade (no client
/// library would send them): each closes that one connection (with close code 1002, protocol error, when the client
/// reads it before the reset), and the broker goes on serving the others. An unmasked client frame (RFC 6455 5.1:
/// "The server MUST close the connection upon receiving a frame that is not masked") is closed with 1002 too, by
/// .NET's WebSocket, before its payload reaches MQTT.
/// </summary>
public sealed class WebSocketFramingSpecs(WebSocketFixture fixture) : IClassFixture<WebSocketFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static TheoryData<string, byte[]> MalformedFrames => new()
    {
        // 5.1: "The server MUST close the connection upon receiving a frame that is not masked" (here carrying two
        // PINGREQs; had they reached MQTT, the close would be the broker's own 1000, not 1002). .NET's WebSocket
        // checks it once it holds six bytes (the header with the mask key it expects), so a shorter unmasked frame
        // waits for more input or the MQTT keep-alive. An_unmasked_frame_after_masked_ones_... shows its payload is
        // never delivered.
        { "unmasked frame", [0x82, 0x04, 0xC0, 0x00, 0xC0, 0x00] },
        // 5.2: reserved bits set without a negotiated extension.
        { "RSV1 set", [0xC2, 0x82, 1, 2, 3, 4, 0xC0 ^ 1, 0x00 ^ 2] },
        // 5.2: opcode 0x3 is reserved.
        { "reserved opcode", [0x83, 0x80, 1, 2, 3, 4] },
        // 5.5: control frames must not be fragmented (FIN clear on a ping).
        { "fragmented ping", [0x09, 0x80, 1, 2, 3, 4] },
    };

    [Theory]
    [MemberData(nameof(MalformedFrames))]
    public async Task A_malformed_frame_closes_that_connection_with_1002_and_no_other(string what, byte[] frame)
    {
        var bystander = await fixture.ConnectAsync(MqttProtocolVersion.V500, E2E.Id("ws-frame-bystander", MqttProtocolVersion.V500));
        using var socket = await UpgradeAsync();

        await socket.SendAsync(frame);

        // The connection ends (ReadUntilClosedAsync fails the test on a timeout). Kestrel sends close 1002 first where
        // it can; where the connection is reset right after, the client may not get to read it.
        var answer = await ReadUntilClosedAsync(socket);
        if (answer.Length > 0)
        {
            Assert.True(answer.Length >= 4 && answer[0] == 0x88, $"{what}: expected a close frame, got {Convert.ToHexString(answer)}");
            Assert.Equal(1002, (answer[2] << 8) | answer[3]);
        }

        Assert.True(bystander.IsConnected);
        await E2E.AssertHealthyAsync(fixture.Broker, MqttProtocolVersion.V500);
    }

    [Fact]
    public async Task An_unmasked_frame_after_masked_ones_closes_with_1002_and_its_publish_goes_nowhere()
    {
        var topic = "ws/unmasked/" + Guid.NewGuid().ToString("N")[..8];
        var bystander = await fixture.ConnectAsync(MqttProtocolVersion.V500, E2E.Id("ws-unmasked-bystander", MqttProtocolVersion.V500));
        var received = new MessageCollector(bystander);
        await E2E.SubscribeAsync(bystander, topic);
        using var socket = await UpgradeAsync();
        socket.NoDelay = true;

        // A masked CONNECT is served (CONNACK, accepted) and a masked PINGREQ answered (PINGRESP) ...
        await socket.SendAsync(ClientFrame(Connect("ws-unmasked-later"), masked: true));
        Assert.Equal("820420020000", Convert.ToHexString(await ReadExactlyAsync(socket, 6)));
        await socket.SendAsync(ClientFrame([0xC0, 0x00], masked: true));
        Assert.Equal("8202D000", Convert.ToHexString(await ReadExactlyAsync(socket, 4)));

        // ... then an unmasked frame carrying a QoS 0 PUBLISH, its header split across two writes.
        var unmasked = ClientFrame([0x30, (byte)(2 + topic.Length + 3), 0x00, (byte)topic.Length, .. Encoding.ASCII.GetBytes(topic), .. "bad"u8], masked: false);
        await socket.SendAsync(unmasked.AsMemory(0, 1));
        await Task.Delay(200);
        await socket.SendAsync(unmasked.AsMemory(1));

        // The connection ends; a close frame, when the client reads it before the reset, says 1002.
        var answer = await ReadUntilClosedAsync(socket);
        Assert.True(answer.Length == 0 || Convert.ToHexString(answer).StartsWith("880203EA", StringComparison.Ordinal), Convert.ToHexString(answer));
        // The PUBLISH was not delivered: a later one from a well-behaved client is the only message the subscriber gets.
        await E2E.PublishAsync(bystander, topic, "good");
        Assert.Equal("good", E2E.Text((await received.WaitForAsync(1))[0]));
        await received.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.True(bystander.IsConnected);
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        var bytes = new byte[count];
        using var timeout = new CancellationTokenSource(Timeout);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.ReadExactlyAsync(bytes, timeout.Token);
        return bytes;
    }

    /// <summary>An MQTT 3.1.1 CONNECT (clean session, keep-alive 60 s) for <paramref name="clientId"/>.</summary>
    private static byte[] Connect(string clientId)
    {
        var id = Encoding.ASCII.GetBytes(clientId);
        byte[] variable = [0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02, 0x00, 0x3C, 0x00, (byte)id.Length];
        return [0x10, (byte)(variable.Length + id.Length), .. variable, .. id];
    }

    /// <summary>A final binary frame (payload up to 125 bytes) from a client, masked as RFC 6455 requires, or not.</summary>
    private static byte[] ClientFrame(byte[] payload, bool masked)
    {
        if (!masked)
        {
            return [0x82, (byte)payload.Length, .. payload];
        }

        var key = RandomNumberGenerator.GetBytes(4);
        return [0x82, (byte)(0x80 | payload.Length), .. key, .. payload.Select((b, i) => (byte)(b ^ key[i % 4]))];
    }

    /// <summary>Opens TCP, sends the upgrade request by hand and reads the 101 response.</summary>
    private async Task<Socket> UpgradeAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(fixture.Broker.Server.WebSocketEndPoint!);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                      $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        var response = new StringBuilder();
        var one = new byte[1];
        using var timeout = new CancellationTokenSource(Timeout);
        while (!response.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            Assert.Equal(1, await socket.ReceiveAsync(one, SocketFlags.None, timeout.Token));
            response.Append((char)one[0]);
        }

        Assert.StartsWith("HTTP/1.1 101", response.ToString(), StringComparison.Ordinal);
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        Assert.Contains("Sec-WebSocket-Accept: " + accept, response.ToString(), StringComparison.OrdinalIgnoreCase);
        return socket;
    }

    private static async Task<byte[]> ReadUntilClosedAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var received = new List<byte>();
        var buffer = new byte[256];
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                received.AddRange(buffer.AsSpan(0, n).ToArray());
            }
        }
        catch (SocketException)
        {
            // reset after the close frame: what was read is kept
        }

        return received.ToArray();
    }
}
