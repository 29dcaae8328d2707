using Broker.Sessions;

namespace Broker.Tests.Sessions;

public sealed class LiveQueueGaugeSpecs
{
    [Fact]
    public void The_host_should_confirm_only_while_queued_and_in_transit_bytes_fit_the_byte_bound()
    {
        var gauge = new LiveQueueGauge(capacity: 1000, maxBytes: 1000);
        Assert.True(gauge.TryReserve(400));
        Assert.True(gauge.TryReserve(400));
        Assert.False(gauge.TryReserve(400)); // 1,200 bytes on their way: far under the count, over the bytes
        Assert.True(gauge.TryReserve(200));

        gauge.Arrived(400);
        gauge.Update(pressure: false, refusing: false, queued: 1, queuedBytes: 400);
        Assert.False(gauge.TryReserve(1)); // 400 queued + 600 still on their way
        gauge.Arrived(400);
        gauge.Arrived(200);
        gauge.Update(pressure: false, refusing: false, queued: 3, queuedBytes: 1000);
        Assert.False(gauge.TryReserve(1));
        gauge.Update(pressure: false, refusing: false, queued: 0, queuedBytes: 0);
        Assert.True(gauge.TryReserve(1000));
    }

    [Fact]
    public void The_host_should_confirm_only_while_the_count_fits_and_never_under_pressure()
    {
        var gauge = new LiveQueueGauge(capacity: 2);
        Assert.True(gauge.TryReserve(10));
        Assert.True(gauge.TryReserve(10));
        Assert.False(gauge.TryReserve(10));
        gauge.Arrived(10);
        gauge.Arrived(10);
        gauge.Update(pressure: true, refusing: false, queued: 0, queuedBytes: 0);
        Assert.False(gauge.TryReserve(10));
        gauge.Update(pressure: false, refusing: true, queued: 0, queuedBytes: 0);
        Assert.True(gauge.Refusing);
    }
}
