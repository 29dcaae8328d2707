using System.Text;
using Broker.Security;
using Broker.Tests.EndToEnd;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;
using Broker.Protocol.Packets;

namespace Broker.Tests.Security;

/// <summary>A temporary directory for password, ACL and certificate files; deleted on dispose.</summary>
public sealed class SecurityTestFiles : IDisposable
{
    public SecurityTestFiles()
    {
        Directory = Path.Combine(Path.GetTempPath(), "broker-security-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string PasswordFile => Path.Combine(Directory, "passwords");

    public string AclFile => Path.Combine(Directory, "acl");

    /// <summary>Writes a password file; 1000 iterations (the minimum) keep the tests quick.</summary>
    public string WritePasswords(params (string User, string Password)[] users)
    {
        File.WriteAllText(PasswordFile, PasswordLines(users));
        return PasswordFile;
    }

    public static string PasswordLines(IEnumerable<(string User, string Password)> users) =>
        string.Concat(users.Select(u => $"{u.User}:{PasswordHasher.Hash(u.Password, 1000)}\n"));

    /// <summary>Replaces a file the way an editor or deployment would: write aside, rename over.</summary>
    public void Replace(string path, string text)
    {
        var temp = path + ".new";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>CONNECT with credentials over a raw socket, so that the exact CONNACK code can be asserted.</summary>
public static class Credentials
{
    public static Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectAsync(
        int port, ClientVersion version, string clientId, string? username, string? password) =>
        RawMqttClient.ConnectAsync(port, version, clientId, c => c with
        {
            Username = username,
            Password = password is null ? null : (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes(password),
        });

    /// <summary>Retries until the CONNACK code is the expected one (a file reload is picked up by a timer).</summary>
    public static async Task<byte> EventuallyAsync(int port, ClientVersion version, string username, string password, byte expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        byte last;
        do
        {
            var (client, connAck) = await ConnectAsync(port, version, "poll-" + Guid.NewGuid().ToString("N")[..8], username, password);
            await client.DisposeAsync();
            last = connAck.ReasonCode;
            if (last == expected)
            {
                return last;
            }

            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);
        return last;
    }
}
