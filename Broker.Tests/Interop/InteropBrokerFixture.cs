using Broker.Tests.EndToEnd;

namespace Broker.Tests.Interop;

/// <summary>One in-process broker shared by the specs of a class (each spec uses its own topics and client ids).</summary>
public sealed class InteropBrokerFixture : IAsyncLifetime
{
    private BrokerHarness? _harness;

    public BrokerHarness Broker => _harness ?? throw new InvalidOperationException("Not started");

    public async Task InitializeAsync() => _harness = await BrokerHarness.StartAsync();

    public async Task DisposeAsync()
    {
        if (_harness is not null)
        {
            await _harness.DisposeAsync();
        }
    }
}
