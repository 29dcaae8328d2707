using Broker.Configuration;
using Broker.Protocol;
using Broker.Security;
using Broker.Tests.Interop;

namespace Broker.Tests.Security;

/// <summary>
/// The HTTP ACL client itself, against a real HTTP service: identical questions asked at once share one request,
/// answers expire after Auth:Http:AclCacheSeconds, the cache never holds more than Auth:Http:AclCacheSize, and a
/// missing answer is never remembered.
/// </summary>
public sealed class HttpAuthorizerSpecs
{
    private static AclQuestion Question(string topic) => new("c1", "u1", AclAction.Publish, topic, MqttQoS.AtLeastOnce, false);

    [Fact]
    public async Task Identical_questions_asked_at_once_share_one_request()
    {
        using var service = new AuthService(_ => "allow") { Delay = TimeSpan.FromMilliseconds(200) };
        using var authorizer = new HttpAuthorizer(new HttpAuthOptions { AclUrl = service.Url, TimeoutSeconds = 5 });
        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => authorizer.AskAsync(Question("t/1"))));
        Assert.All(answers, a => Assert.Equal(AclAnswer.Allow, a));
        Assert.Single(service.Questions);
        Assert.Equal(1, authorizer.RequestsSent);
    }

    [Fact]
    public async Task An_answer_expires_after_the_cache_time_and_the_cache_stays_within_its_size()
    {
        using var service = new AuthService(q => q.GetProperty("topic").GetString() == "t/deny" ? "deny" : "allow");
        long now = 0;
        using var authorizer = new HttpAuthorizer(
            new HttpAuthOptions { AclUrl = service.Url, TimeoutSeconds = 5, AclCacheSeconds = 10, AclCacheSize = 100 }, () => now);

        Assert.Equal(AclAnswer.Deny, await authorizer.AskAsync(Question("t/deny")));
        Assert.True(authorizer.TryCached(Question("t/deny"), out var cached));
        Assert.Equal(AclAnswer.Deny, cached); // denials are remembered too
        now += 10_001;
        Assert.False(authorizer.TryCached(Question("t/deny"), out _));

        for (var batch = 0; batch < 5; batch++)
        {
            await Task.WhenAll(Enumerable.Range(batch * 30, 30).Select(i => authorizer.AskAsync(Question("t/" + i))));
            Assert.InRange(authorizer.CachedAnswers, 1, 100);
        }

        Assert.Equal(151, service.Questions.Count);
    }

    [Fact]
    public async Task No_answer_is_never_remembered()
    {
        using var authorizer = new HttpAuthorizer(new HttpAuthOptions { AclUrl = $"http://127.0.0.1:{InteropEnvironment.FreePort()}/acl", TimeoutSeconds = 2 });
        Assert.Equal(AclAnswer.NoAnswer, await authorizer.AskAsync(Question("t/1")));
        Assert.False(authorizer.TryCached(Question("t/1"), out _));
        Assert.Equal(0, authorizer.CachedAnswers);
    }
}
