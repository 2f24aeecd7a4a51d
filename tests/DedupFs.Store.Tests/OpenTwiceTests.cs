namespace DedupFs.Store.Tests;

public class OpenTwiceTests
{
    [Fact]
    public void A_store_open_elsewhere_is_refused_clearly()
    {
        using var dir = new TempDir();
        using Store first = Store.Open(dir.Path, TestOptions.Manual());
        var e = Assert.ThrowsAny<Exception>(() => Store.Open(dir.Path, TestOptions.Manual()));
        Assert.Contains("in use", e.Message);
    }

    [Fact]
    public void Background_commit_after_enough_pages()
    {
        using var dir = new TempDir();
        using Store store = Store.Open(dir.Path, new StoreOptions { CommitInterval = null, CommitAfterPages = 8, MetadataMapSize = 1L << 30 });
        SlotTable t = store.OpenSlotTable(1);
        for (int i = 0; i < 8; i++)
            using (store.EnterMutation()) t.Set(i, store.AllocatePage(TestOptions.Page(i), (ulong)i));
        SpinWait.SpinUntil(() => store.CommitCount > 0, TimeSpan.FromSeconds(10));
        Assert.True(store.CommitCount > 0);
    }

    [Fact]
    public void Background_commit_after_interval()
    {
        using var dir = new TempDir();
        using Store store = Store.Open(dir.Path, new StoreOptions { CommitInterval = TimeSpan.FromMilliseconds(50), CommitAfterPages = 0, MetadataMapSize = 1L << 30 });
        store.Values.Put("k"u8, "v"u8);
        SpinWait.SpinUntil(() => store.CommitCount > 0, TimeSpan.FromSeconds(10));
        Assert.True(store.CommitCount > 0);
    }
}

public class SpaceTests
{
    [Fact]
    public void Space_counts_live_free_and_pending_slots()
    {
        using var dir = new TempDir();
        StoreTestData.Build(dir.Path);
        using Store store = Store.Open(dir.Path, TestOptions.Manual());
        StoreSpace s = store.Space;
        Assert.Equal(6, s.Slots);
        Assert.Equal(6, s.LiveSlots);
        Assert.Equal(6 * 4096, s.PageFileBytes);
        Assert.True(s.MetadataBytes > 0);
    }
}
