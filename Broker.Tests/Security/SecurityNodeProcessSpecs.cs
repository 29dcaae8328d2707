using Broker.Tests.Durability;
using Broker.Tests.Interop;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Security;

/// <summary>The Broker.Node executable with a password file: its start-up log says whether anonymous clients are allowed and why.</summary>
public sealed class SecurityNodeProcessSpecs
{
    [Fact]
    public async Task The_node_logs_its_anonymous_policy_and_mosquitto_clients_need_the_password()
    {
        using var files = new SecurityTestFiles();
        var passwords = files.WritePasswords(("alice", "s3cret"));
        using var node = await BrokerNodeProcess.StartAsync($"--Node:DataDir={files.Directory}/data", $"--Auth:PasswordFile={passwords}",
            "--Auth:AllowAnonymous=false");
        var policy = await node.Process.WaitForLineAsync(l => l.Contains("Security: anonymous clients", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        Assert.Contains("refused (Auth:AllowAnonymous = false in the configuration)", policy, StringComparison.Ordinal);

        var port = node.MqttPort.ToString();
        using var anonymous = ExternalProcess.Start(MosquittoPub, ["-h", "127.0.0.1", "-p", port, "-t", "t", "-m", "x"]);
        Assert.NotEqual(0, await anonymous.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("not authorised", anonymous.Stderr, StringComparison.OrdinalIgnoreCase);
        await ExternalProcess.RunAsync(MosquittoPub, ["-h", "127.0.0.1", "-p", port, "-u", "alice", "-P", "s3cret", "-t", "t", "-m", "x"],
            TimeSpan.FromSeconds(20));
    }
}
