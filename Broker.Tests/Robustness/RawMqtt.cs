using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Broker.Tests.Robustness;

/// <summary>Raw TCP access to the broker for misbehaving-client specs: hand-built packets, aborts and EOF checks.</summary>
internal static class RawMqtt
{
    /// <summary>An MQTT 3.1.1 CONNECT with clean session and the given keep alive (seconds).</summary>
    public static byte[] Connect(string clientId, ushort keepAlive = 60)
    {
        var id = Encoding.UTF8.GetBytes(clientId);
        var variable = new List<byte> { 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02 };
        variable.Add((byte)(keepAlive >> 8));
        variable.Add((byte)keepAlive);
        variable.Add((byte)(id.Length >> 8));
        variable.Add((byte)id.Length);
        variable.AddRange(id);
        if (variable.Count > 127)
        {
            throw new ArgumentException("Client id too long for this helper", nameof(clientId));
        }

        return [0x10, (byte)variable.Count, .. variable];
    }

    public static async Task<Socket> OpenAsync(int port, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes, failing on EOF or after the timeout.</summary>
    public static async Task<byte[]> ReadExactlyAsync(Socket socket, int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                throw new IOException($"EOF after {read} of {count} bytes");
            }

            read += n;
        }

        return buffer;
    }

    /// <summary>Sends CONNECT and checks the CONNACK (accepted, 3.1.1).</summary>
    public static async Task ConnectAndExpectConnAckAsync(Socket socket, string clientId, TimeSpan timeout, ushort keepAlive = 60)
    {
        await socket.SendAsync(Connect(clientId, keepAlive), SocketFlags.None);
        var connAck = await ReadExactlyAsync(socket, 4, timeout);
        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, connAck);
    }

    /// <summary>
    /// Waits until the broker closes the connection (EOF or reset), discarding whatever it sends first; returns how
    /// long that took. Fails if the socket is still open after the timeout.
    /// </summary>
    public static async Task<TimeSpan> WaitForCloseAsync(Socket socket, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[4096];
        try
        {
            for (var reads = 0; reads < 10_000; reads++)
            {
                if (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0)
                {
                    return watch.Elapsed;
                }
            }

            throw new InvalidOperationException($"{what}: the broker kept sending instead of closing");
        }
        catch (SocketException)
        {
            return watch.Elapsed; // reset by the broker: closed as well
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{what}: the broker did not close the connection within {timeout.TotalSeconds} s");
        }
    }

    /// <summary>Drops the connection without DISCONNECT: an RST, like a device losing power or a NAT timing out.</summary>
    public static void Abort(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }

        socket.Dispose();
    }
}
