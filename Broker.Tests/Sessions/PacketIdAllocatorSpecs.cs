using Broker.Sessions;

namespace Broker.Tests.Sessions;

public sealed class PacketIdAllocatorSpecs
{
    [Fact]
    public void Allocator_should_start_at_1_and_count_up()
    {
        var ids = new PacketIdAllocator();
        Assert.Equal(new ushort[] { 1, 2, 3 }, new[] { ids.Allocate(), ids.Allocate(), ids.Allocate() });
        Assert.Equal(3, ids.InUse);
    }

    [Fact]
    public void Allocator_should_wrap_from_65535_to_1_and_skip_ids_in_use()
    {
        var ids = new PacketIdAllocator();
        ids.Reserve(1);
        ids.Reserve(2);
        ids.Reserve(65534);
        Assert.Equal(65535, ids.Allocate());
        Assert.Equal(3, ids.Allocate()); // wrapped past 0, skipped 1 and 2 which are in use
    }

    [Fact]
    public void Allocator_should_never_hand_out_an_id_in_use_and_return_0_when_full()
    {
        var ids = new PacketIdAllocator();
        var seen = new HashSet<ushort>();
        for (var i = 0; i < ushort.MaxValue; i++)
        {
            var id = ids.Allocate();
            Assert.NotEqual(0, id);
            Assert.True(seen.Add(id), $"id {id} handed out twice");
        }

        Assert.Equal(ushort.MaxValue, ids.InUse);
        Assert.Equal(0, ids.Allocate());
        Assert.Equal(0, ids.Allocate());

        Assert.True(ids.Release(40000));
        Assert.Equal(40000, ids.Allocate());
        Assert.Equal(0, ids.Allocate());
    }

    [Fact]
    public void Released_id_should_be_reused_only_after_the_others()
    {
        var ids = new PacketIdAllocator();
        var first = ids.Allocate();
        ids.Allocate();
        Assert.True(ids.Release(first));
        Assert.False(ids.Release(first));
        Assert.Equal(3, ids.Allocate()); // walks forward first
        Assert.Equal(2, ids.InUse);

        ids.Reserve(65535);
        Assert.Equal(first, ids.Allocate()); // after the wrap the released id is free again
        Assert.Equal(4, ids.Allocate());
    }

    [Fact]
    public void Released_ids_should_come_back_after_a_wrap()
    {
        var ids = new PacketIdAllocator();
        for (var i = 0; i < 10; i++)
        {
            ids.Allocate();
        }

        for (ushort id = 1; id <= 10; id++)
        {
            ids.Release(id);
        }

        ids.Reserve(65535);
        Assert.Equal(1, ids.Allocate());
        ids.Clear();
        Assert.Equal(0, ids.InUse);
    }
}
