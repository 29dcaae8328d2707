using Broker.Protocol;
using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;

namespace Broker.Tests.Sessions;

public sealed class InflightWindowSpecs
{
    private static InflightMessage Entry(ushort id, MqttQoS qos = MqttQoS.AtLeastOnce) =>
        new(id, Queued("m" + id, qos), Released: false);

    [Fact]
    public void Window_should_keep_entries_in_the_order_they_were_sent()
    {
        var window = new InflightWindow(10);
        foreach (var id in new ushort[] { 7, 3, 65535, 1 })
        {
            window.Add(Entry(id));
        }

        Assert.Equal(new ushort[] { 7, 3, 65535, 1 }, window.Entries.Select(e => e.PacketId));
        Assert.True(window.Remove(3));
        window.Add(Entry(4));
        Assert.Equal(new ushort[] { 7, 65535, 1, 4 }, window.Entries.Select(e => e.PacketId));
    }

    [Fact]
    public void Window_should_be_full_at_capacity_and_free_after_remove()
    {
        var window = new InflightWindow(2);
        window.Add(Entry(1));
        Assert.False(window.IsFull);
        window.Add(Entry(2));
        Assert.True(window.IsFull);
        Assert.True(window.Remove(1));
        Assert.False(window.IsFull);
        Assert.False(window.Remove(1));
        Assert.Equal(1, window.Count);
    }

    [Fact]
    public void Release_should_mark_only_QoS2_entries_and_keep_their_place()
    {
        var window = new InflightWindow(5);
        window.Add(Entry(1, MqttQoS.ExactlyOnce));
        window.Add(Entry(2, MqttQoS.AtLeastOnce));
        window.Add(Entry(3, MqttQoS.ExactlyOnce));

        Assert.True(window.Release(1));
        Assert.False(window.Release(2));
        Assert.False(window.Release(99));

        Assert.True(window.TryGet(1, out var released));
        Assert.True(released.Released);
        Assert.True(window.TryGet(2, out var qos1));
        Assert.False(qos1.Released);
        Assert.Equal(new ushort[] { 1, 2, 3 }, window.Entries.Select(e => e.PacketId));
        Assert.Equal(new[] { true, false, false }, window.Entries.Select(e => e.Released));
    }

    [Fact]
    public void Capacity_change_should_apply_to_IsFull()
    {
        var window = new InflightWindow(32);
        window.Add(Entry(1));
        window.Add(Entry(2));
        window.Capacity = 2;
        Assert.True(window.IsFull);
        window.Clear();
        Assert.Equal(0, window.Count);
        Assert.False(window.TryGet(1, out _));
    }
}
