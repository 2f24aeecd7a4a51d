using LightningDB;

namespace DedupFs.Store.Tests;

internal static class StoreTestHooks
{
    public static void RewriteFormatVersion(string dir, uint version)
    {
        Interop.LmdbLoader.EnsureLoaded();
        using var env = new LightningEnvironment(Path.Combine(dir, "meta"), new EnvironmentConfiguration { MaxDatabases = 16, MapSize = 1L << 30 });
        env.Open();
        using var tx = env.BeginTransaction();
        using var db = tx.OpenDatabase("header");
        var (_, _, v) = tx.Get(db, "format"u8);
        byte[] rec = v.CopyToNewArray()[..^4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(rec.AsSpan(8), version);
        tx.Put(db, "format"u8, BlobTable.Seal("format"u8, rec));
        tx.Commit();
    }
}

internal static class StoreTestData
{
    /// <summary>A store with two mappings sharing some pages, committed. Returns the page ids used.</summary>
    public static List<PageId> Build(string dir, int pages = 6)
    {
        var ids = new List<PageId>();
        using Store store = Store.Open(dir, TestOptions.Manual());
        using (store.EnterMutation())
        {
            SlotTable a = store.OpenSlotTable(10), b = store.OpenSlotTable(11);
            for (int i = 0; i < pages; i++)
            {
                byte[] page = TestOptions.Page(100 + i);
                PageId id = store.AllocatePage(page, K4os.Hash.xxHash.XXH64.DigestOf(page));
                ids.Add(id);
                a.Set(i, id);
                if (i % 2 == 0) { store.AddRef(id); b.Set(i, id); }
            }
            a.ExtendLength(pages * 4096L);
            b.ExtendLength(pages * 4096L);
        }
        store.Inodes.Put(StoreKeys.Inode(10), "attributes-of-inode-10-xxxxxxxxxxxxxxxx"u8);
        store.Commit();
        return ids;
    }

    /// <summary>Rewrites one raw LMDB value (bypassing the checksums) to simulate damage.</summary>
    public static void DamageRecord(string dir, string db, byte[] key)
    {
        Interop.LmdbLoader.EnsureLoaded();
        using var env = new LightningEnvironment(Path.Combine(dir, "meta"), new EnvironmentConfiguration { MaxDatabases = 16, MapSize = 1L << 30 });
        env.Open();
        using var tx = env.BeginTransaction();
        using var d = tx.OpenDatabase(db);
        var (rc, _, v) = tx.Get(d, key);
        Assert.Equal(MDBResultCode.Success, rc);
        byte[] value = v.CopyToNewArray();
        value[value.Length / 2] ^= 0x10;
        tx.Put(d, key, value);
        tx.Commit();
    }

    public static void FlipPageByte(string dir, PageId page, int offset = 77)
    {
        using var f = new FileStream(Path.Combine(dir, "pages.dat"), FileMode.Open, FileAccess.ReadWrite);
        f.Position = page.Slot * 4096 + offset;
        int b = f.ReadByte();
        f.Position--;
        f.WriteByte((byte)(b ^ 0x01));
    }
}
