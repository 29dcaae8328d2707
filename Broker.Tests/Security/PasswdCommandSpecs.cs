using Broker.Configuration;
using Broker.Protocol;
using Broker.Security;
using Broker.Tests.Durability;
using Broker.Tests.EndToEnd;
using Broker.Tests.Interop;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>
/// <c>Broker.Node passwd</c> run as the real executable edits the password file while a broker uses it: the broker
/// picks each change up without a restart.
/// </summary>
public sealed class PasswdCommandSpecs
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private const byte Accepted = 0;
    private const byte BadCredentials = (byte)MqttConnectReturnCode.BadUserNameOrPassword;

    private static async Task<(int Code, string Stderr)> Passwd(params string[] args)
    {
        using var process = ExternalProcess.Start("dotnet", [BrokerNodeProcess.NodeDll, "passwd", .. args]);
        var code = await process.WaitForExitAsync(CommandTimeout);
        return (code, process.Stderr);
    }

    [Fact]
    public async Task Users_added_changed_and_removed_with_passwd_take_effect_on_a_running_broker()
    {
        using var files = new SecurityTestFiles();
        var file = files.PasswordFile;
        Assert.Equal(0, (await Passwd(file, "add", "alice", "--password", "first", "--iterations", "1000")).Code);

        Assert.StartsWith("alice:" + PasswordHasher.Prefix + "1000$", File.ReadAllText(file), StringComparison.Ordinal);
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Auth = o.Auth with { PasswordFile = file, AllowAnonymous = false, ReloadInterval = 1 },
        });
        Assert.Equal(Accepted, await Credentials.EventuallyAsync(broker.Port, ClientVersion.V311, "alice", "first", Accepted));

        // A new password through standard input (the password stays out of the process list).
        var shell = ExternalProcess.Start("/bin/sh",
            ["-c", $"printf 'second\\n' | dotnet '{BrokerNodeProcess.NodeDll}' passwd '{file}' change alice --iterations 1000"]);
        Assert.Equal(0, await shell.WaitForExitAsync(CommandTimeout));
        shell.Dispose();
        Assert.Equal(Accepted, await Credentials.EventuallyAsync(broker.Port, ClientVersion.V311, "alice", "second", Accepted));
        Assert.Equal(BadCredentials, (await Credentials.ConnectAsync(broker.Port, ClientVersion.V311, "old", "alice", "first")).ConnAck.ReasonCode);

        var duplicate = await Passwd(file, "add", "alice", "--password", "x");
        Assert.Equal(1, duplicate.Code);
        Assert.Contains("already exists", duplicate.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, (await Passwd(file, "remove", "alice")).Code);

        Assert.Equal(BadCredentials, await Credentials.EventuallyAsync(broker.Port, ClientVersion.V311, "alice", "second", BadCredentials));
    }

    [Fact]
    public async Task A_password_file_broken_on_reload_keeps_the_previous_users_and_a_broken_one_stops_start_up()
    {
        using var files = new SecurityTestFiles();
        var file = files.WritePasswords(("carol", "pw"));
        await using (var broker = await BrokerHarness.StartAsync(o => o with
        {
            Auth = o.Auth with { PasswordFile = file, AllowAnonymous = false, ReloadInterval = 1 },
        }))
        {
            files.Replace(file, File.ReadAllText(file) + "dave:not-a-hash\n");
            broker.Server.Context.Security.CheckFiles();
            Assert.Equal(Accepted, (await Credentials.ConnectAsync(broker.Port, ClientVersion.V500, "c", "carol", "pw")).ConnAck.ReasonCode);
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => BrokerHarness.StartAsync(o => o with
        {
            Auth = o.Auth with { PasswordFile = file },
        }));
        Assert.Contains("Auth:PasswordFile", error.Message, StringComparison.Ordinal);
        Assert.Contains("line 2", error.Message, StringComparison.Ordinal);
    }
}
