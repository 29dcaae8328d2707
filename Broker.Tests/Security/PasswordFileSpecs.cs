using System.Text;
using Broker.Security;
using Broker.Tests.Interop;

namespace Broker.Tests.Security;

/// <summary>PBKDF2 hashes and the password file's format, including files written by Mosquitto's mosquitto_passwd.</summary>
public sealed class PasswordFileSpecs
{
    private static bool Verify(string password, string hash) => PasswordHasher.Verify(Encoding.UTF8.GetBytes(password), hash);

    [Fact]
    public void A_hash_carries_its_iteration_count_and_salt_and_verifies_only_the_right_password()
    {
        var first = PasswordHasher.Hash("correct horse", 2000);
        var second = PasswordHasher.Hash("correct horse", 2000);
        Assert.StartsWith("$pbkdf2-sha256$2000$", first, StringComparison.Ordinal);
        Assert.NotEqual(first, second); // salted
        Assert.True(Verify("correct horse", first));
        Assert.False(Verify("correct horsE", first));
        Assert.False(Verify("correct horse", first.Replace("$2000$", "$2001$", StringComparison.Ordinal)));
        Assert.False(Verify("x", "$pbkdf2-sha256$notanumber$AAAA$AAAA"));
    }

    [Fact]
    public async Task A_file_written_by_mosquitto_passwd_is_accepted()
    {
        using var files = new SecurityTestFiles();
        await ExternalProcess.RunAsync("/usr/bin/mosquitto_passwd", ["-c", "-b", files.PasswordFile, "alice", "s3cret"], TimeSpan.FromSeconds(20));
        var file = PasswordFile.Parse(File.ReadAllText(files.PasswordFile), files.PasswordFile);
        Assert.StartsWith("$7$", file.Users["alice"], StringComparison.Ordinal);
        Assert.True(Verify("s3cret", file.Users["alice"]));
        Assert.False(Verify("secret", file.Users["alice"]));
    }

    [Theory]
    [InlineData("alice:$pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nbob:plaintext\n", 2, "bob")]
    [InlineData("# comment\n\nno-colon-here\n", 3, "username:hash")]
    [InlineData("a:$7$101$AAAA$AAAAAAAAAAAAAAAAAAAAAA==\na:$7$101$AAAA$AAAAAAAAAAAAAAAAAAAAAA==\n", 2, "twice")]
    public void A_bad_line_is_named_by_its_number(string text, int line, string says)
    {
        var error = Assert.Throws<SecurityFileException>(() => PasswordFile.Parse(text, "pw"));
        Assert.Equal(line, error.Line);
        Assert.Contains(says, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_failure_delay_grows_from_nothing_and_is_bounded()
    {
        Assert.Equal(TimeSpan.Zero, AuthFailureThrottle.DelayFor(1));
        var delays = Enumerable.Range(2, 10).Select(AuthFailureThrottle.DelayFor).ToList();
        Assert.True(delays.Zip(delays.Skip(1)).All(p => p.Item2 >= p.Item1));
        Assert.True(delays[1] > delays[0]);
        Assert.Equal(AuthFailureThrottle.Max, AuthFailureThrottle.DelayFor(100));
    }

    [Fact]
    public void The_token_bucket_allows_a_burst_then_the_rate()
    {
        var bucket = new TokenBucket(ratePerSecond: 10, burst: 10, nowMs: 0);
        Assert.True(Enumerable.Range(0, 10).All(_ => bucket.Take(0)));
        Assert.False(bucket.Take(0));
        Assert.Equal(200, bucket.MsUntilAvailable(0)); // one token owed, one wanted: 2 tokens at 10/s
        Assert.True(bucket.Take(200));
    }
}
