using Broker.Security;

namespace Broker.Tests.Security;

/// <summary>The ACL file's rules on their own: sections, patterns, deny, filter coverage, errors with line numbers.</summary>
public sealed class AclFileSpecs
{
    private const string Text = """
        # anonymous clients
        topic read public/#
        user alice
        topic alice/#
        topic deny alice/secret/#
        topic write shared/in
        user monitor
        topic read #
        pattern readwrite clients/%c/#
        pattern read users/%u/inbox
        """;

    private static readonly AclFile Acl = AclFile.Parse(Text, "acl");

    [Fact]
    public void Lines_before_any_user_line_apply_to_anonymous_clients_only()
    {
        Assert.True(Acl.CanRead("c", null, "public/news"));
        Assert.False(Acl.CanWrite("c", null, "public/news"));
        Assert.False(Acl.CanRead("c", "alice", "public/news"));
    }

    [Fact]
    public void A_topic_line_without_access_grants_readwrite_and_deny_wins()
    {
        Assert.True(Acl.CanWrite("c", "alice", "alice/a/b"));
        Assert.True(Acl.CanRead("c", "alice", "alice/a"));
        Assert.False(Acl.CanRead("c", "alice", "alice/secret/plans"));
        Assert.False(Acl.CanWrite("c", "alice", "alice/secret"));
        Assert.True(Acl.CanWrite("c", "alice", "shared/in"));
        Assert.False(Acl.CanRead("c", "alice", "shared/in"));
    }

    [Fact]
    public void Patterns_substitute_client_id_and_username_for_everyone_but_never_wildcards()
    {
        Assert.True(Acl.CanWrite("dev1", null, "clients/dev1/x"));
        Assert.False(Acl.CanWrite("dev1", null, "clients/dev2/x"));
        Assert.True(Acl.CanRead("any", "bob", "users/bob/inbox"));
        Assert.False(Acl.CanRead("any", null, "users/bob/inbox"));
        Assert.False(Acl.CanWrite("+", null, "clients/x/y"));
        Assert.False(Acl.CanWrite("#", null, "clients/x/y"));
    }

    [Fact]
    public void Subscribing_needs_a_read_rule_that_covers_the_whole_filter()
    {
        Assert.True(Acl.CanSubscribe("c", "alice", "alice/+/temp"));
        Assert.True(Acl.CanSubscribe("c", "alice", "alice/#"));
        Assert.False(Acl.CanSubscribe("c", "alice", "#"));
        Assert.False(Acl.CanSubscribe("c", "alice", "alice/secret/#"));
        Assert.True(Acl.CanSubscribe("c", "monitor", "#"));
        Assert.False(Acl.CanSubscribe("c", "monitor", "$SYS/#"));
        Assert.True(Acl.CanSubscribe("c", "alice", "$share/g/alice/x"));
        Assert.False(Acl.CanSubscribe("c", "alice", "$share/g/bob/x"));
    }

    [Theory]
    [InlineData("sensors/#", "sensors", true)]
    [InlineData("sensors/#", "sensors/+/t", true)]
    [InlineData("sensors/+", "sensors/#", false)]
    [InlineData("sensors/+", "sensors/+", true)]
    [InlineData("sensors/a", "sensors/+", false)]
    [InlineData("+/+", "a/b/c", false)]
    [InlineData("a/b", "a/b", true)]
    public void Covers_compares_filters_level_by_level(string acl, string filter, bool expected) =>
        Assert.Equal(expected, AclFile.Covers(acl, filter));

    [Theory]
    [InlineData("topic read\n", 1)]
    [InlineData("user alice\ntopic read a/#/b\n", 2)]
    [InlineData("# c\n\nallow read a\n", 3)]
    [InlineData("user\n", 1)]
    public void A_broken_line_is_named_by_its_number(string text, int line)
    {
        var error = Assert.Throws<SecurityFileException>(() => AclFile.Parse(text, "acl"));
        Assert.Equal(line, error.Line);
        Assert.Contains($"acl line {line}", error.Message, StringComparison.Ordinal);
    }
}
