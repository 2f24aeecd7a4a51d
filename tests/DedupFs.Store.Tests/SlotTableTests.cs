namespace DedupFs.Store.Tests;

public class SlotTableTests
{
    [Fact]
    public void Chunks_grow_from_small_arrays_and_every_accessor_sees_through()
    {
        var t = new SlotTable(1, [], 0);
        t.Set(3, new PageId(7));
        Assert.Equal(16, t.Chunks[0]!.Ids.Length);        // a small file costs a small array
        t.Set(700, new PageId(8));
        Assert.Equal(1024, t.Chunks[0]!.Ids.Length);
        Assert.Equal(new PageId(7), t.Get(3));
        Assert.Equal(new PageId(8), t.Get(700));

        var u = new SlotTable(2, [], 0);
        u.Set(1, new PageId(5));                            // 16-entry chunk
        var ids = new uint[40];
        u.CopyIds(10, ids);                                 // reads beyond the array: holes
        Assert.Equal(new uint[40], ids);
        var prev = new uint[3];
        u.Exchange(100, [9, 0, 10], prev);                  // writes beyond the array: grows
        Assert.Equal(new uint[3], prev);
        Assert.Equal(new PageId(9), u.Get(100));
        Assert.Equal(new PageId(10), u.Get(102));
        u.Exchange(100, [0, 0, 0], prev);
        Assert.Equal([9u, 0, 10], prev);
        Assert.Equal(1, u.LastUsedIndex());
        var v = new SlotTable(3, [], 0);
        v.Exchange(200, [0, 0], prev.AsSpan(0, 2));          // holes onto nothing: nothing created
        Assert.Empty(v.Chunks);
    }

    [Fact]
    public async Task Concurrent_writers_to_one_chunk_lose_nothing_while_it_grows()
    {
        for (int round = 0; round < 20; round++)
        {
            var t = new SlotTable(1, [], 0);
            Task[] writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
            {
                for (int i = w; i < 1024; i += 4) t.Set(i, new PageId((uint)i + 1));
            })).ToArray();
            await Task.WhenAll(writers);
            for (int i = 0; i < 1024; i++) Assert.Equal(new PageId((uint)i + 1), t.Get(i));
        }
    }
}
