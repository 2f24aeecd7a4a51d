namespace DedupFs.Store.Tests;

public class StoreBasicsTests
{
    [Fact]
    public void Store_opens_creates_and_reopens()
    {
        using var dir = new TempDir();
        PageId id;
        byte[] page = TestOptions.Page(1);
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            using (store.EnterMutation()) id = store.AllocatePage(page, 42);
            SlotTable t = store.OpenSlotTable(7);
            using (store.EnterMutation()) { t.Set(3, id); t.ExtendLength(4 * 4096); }
            store.Commit();
        }
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            var buf = new byte[4096];
            store.ReadPage(id, buf);
            Assert.Equal(page, buf);
            Assert.Equal(1u, store.RefCount(id));
            Assert.Equal(42ul, store.GetRecord(id).Hash);
            SlotTable t = store.OpenSlotTable(7);
            Assert.Equal(id, t.Get(3));
            Assert.Equal(PageId.None, t.Get(2));
            Assert.Equal(4 * 4096, t.Length);
            Assert.Equal([(7ul, 3L)], store.ComputeRmap(id));
        }
    }

    [Fact]
    public void Uncommitted_work_is_not_visible_after_a_crash()
    {
        using var dir = new TempDir();
        using (Store store = Store.Open(dir.Path, TestOptions.Manual())) { }
        Store s = Store.Open(dir.Path, TestOptions.Manual());
        using (s.EnterMutation()) s.OpenSlotTable(1).Set(0, s.AllocatePage(TestOptions.Page(2), 1));
        s.Inodes.Put(StoreKeys.Inode(1), [1, 2, 3]);
        s.DisposeWithoutCommit();
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            Assert.Equal(PageId.None, store.OpenSlotTable(1).Get(0));
            Assert.False(store.Inodes.TryGet(StoreKeys.Inode(1), out _));
            Assert.Equal(0, store.HighWater);
        }
    }

    [Fact]
    public void Blobs_round_trip_and_list_in_order()
    {
        using var dir = new TempDir();
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            store.Dirents.Put(StoreKeys.Dirent(1, "b"u8), [2]);
            store.Dirents.Put(StoreKeys.Dirent(1, "a"u8), [1]);
            store.Dirents.Put(StoreKeys.Dirent(2, "c"u8), [3]);
            store.Commit();
            store.Dirents.Put(StoreKeys.Dirent(1, "c"u8), [4]);
            Assert.True(store.Dirents.Delete(StoreKeys.Dirent(1, "b"u8)));
            var list = store.Dirents.List(StoreKeys.DirentPrefix(1));
            Assert.Equal(["a", "c"], list.Select(kv => System.Text.Encoding.UTF8.GetString(StoreKeys.NameOf(kv.Key))));
            store.Commit();
        }
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            var list = store.Dirents.List(StoreKeys.DirentPrefix(1));
            Assert.Equal([[1], [4]], list.Select(kv => kv.Value));
            Assert.True(store.Dirents.TryGet(StoreKeys.Dirent(2, "c"u8), out byte[] v));
            Assert.Equal([3], v);
        }
    }

    [Fact]
    public void Freed_slot_is_reused_only_after_commit()
    {
        using var dir = new TempDir();
        using Store store = Store.Open(dir.Path, TestOptions.Manual());
        PageId a;
        using (store.EnterMutation()) a = store.AllocatePage(TestOptions.Page(1), 1);
        store.Commit();
        using (store.EnterMutation())
        {
            Assert.Equal(0u, store.Release(a));
            PageId b = store.AllocatePage(TestOptions.Page(2), 2);
            Assert.NotEqual(a, b); // a's slot is still reachable from durable metadata
        }
        store.Commit();
        using (store.EnterMutation())
        {
            PageId c = store.AllocatePage(TestOptions.Page(3), 3);
            Assert.Equal(a, c);
        }
    }

    [Fact]
    public void Unknown_version_fails_clearly_and_changes_nothing()
    {
        using var dir = new TempDir();
        using (Store.Open(dir.Path, TestOptions.Manual())) { }
        // Rewrite the header as version 99 through LMDB directly.
        StoreTestHooks.RewriteFormatVersion(dir.Path, 99);
        string dataFile = Path.Combine(dir.Path, "meta", "data.mdb");
        byte[] before = File.ReadAllBytes(dataFile);
        var e = Assert.Throws<StoreFormatException>(() => Store.Open(dir.Path, TestOptions.Manual()));
        Assert.Contains("version 99", e.Message);
        Assert.Equal(before, File.ReadAllBytes(dataFile));
    }

    [Fact]
    public void Non_store_directory_is_refused()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Path);
        File.WriteAllText(Path.Combine(dir.Path, "x"), "hello");
        var e = Assert.Throws<StoreFormatException>(() => Store.Open(dir.Path, TestOptions.Manual()));
        Assert.Contains("not a DedupFs store", e.Message);
    }
}

public class BlobPagingTests
{
    [Fact]
    public void Paged_listing_merges_committed_and_pending_entries()
    {
        using var dir = new TempDir();
        using Store store = Store.Open(dir.Path, TestOptions.Manual());
        var expect = new SortedSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < 50; i++) { string n = $"f{i:D3}"; store.Dirents.Put(StoreKeys.Dirent(1, System.Text.Encoding.UTF8.GetBytes(n)), [1]); expect.Add(n); }
        store.Dirents.Put(StoreKeys.Dirent(2, "other"u8), [1]);
        store.Commit();
        for (int i = 0; i < 50; i += 3) { string n = $"f{i:D3}"; store.Dirents.Delete(StoreKeys.Dirent(1, System.Text.Encoding.UTF8.GetBytes(n))); expect.Remove(n); }
        for (int i = 0; i < 10; i++) { string n = $"g{i}"; store.Dirents.Put(StoreKeys.Dirent(1, System.Text.Encoding.UTF8.GetBytes(n)), [2]); expect.Add(n); }
        var seen = new List<string>();
        byte[] after = [];
        while (true)
        {
            var page = store.Dirents.List(StoreKeys.DirentPrefix(1), after, 7);
            seen.AddRange(page.Select(kv => System.Text.Encoding.UTF8.GetString(StoreKeys.NameOf(kv.Key))));
            if (page.Count < 7) break;
            after = StoreKeys.NameOf(page[^1].Key).ToArray();
        }
        Assert.Equal(expect.ToList(), seen);
    }
}
