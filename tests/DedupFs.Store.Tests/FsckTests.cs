namespace DedupFs.Store.Tests;

public class FsckTests
{
    [Fact]
    public void Fresh_store_with_data_is_clean()
    {
        using var dir = new TempDir();
        StoreTestData.Build(dir.Path);
        FsckReport r = Fsck.Run(dir.Path);
        Assert.True(r.Clean, r.ToString());
        Assert.Equal(2, r.MappingsChecked);
        Assert.Equal(6, r.PagesChecked);
    }

    [Fact]
    public void Refcount_mismatch_is_reported_and_repaired()
    {
        using var dir = new TempDir();
        List<PageId> ids = StoreTestData.Build(dir.Path);
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            using (store.EnterMutation()) { store.AddRef(ids[1]); store.Release(ids[2]); }
            store.Commit();
        }
        FsckReport r = Fsck.Run(dir.Path);
        Assert.Equal(2, r.Problems.Count);
        Assert.Contains(r.Problems, p => p.Contains(ids[1].ToString()) && p.Contains("refcount 2, but 1"));
        FsckReport fixedReport = Fsck.Run(dir.Path, repair: true);
        Assert.Equal(2, fixedReport.Repaired.Count);
        Assert.Empty(fixedReport.Unrepairable);
        Assert.True(Fsck.Run(dir.Path).Clean);
    }

    [Fact]
    public void Damaged_page_bytes_fail_reads_with_EIO_and_fsck_names_the_file()
    {
        using var dir = new TempDir();
        List<PageId> ids = StoreTestData.Build(dir.Path);
        StoreTestData.FlipPageByte(dir.Path, ids[3]);
        var log = new List<string>();
        using (Store store = Store.Open(dir.Path, TestOptions.Manual(log)))
        {
            var buf = new byte[4096];
            var e = Assert.Throws<PageChecksumException>(() => store.ReadPage(ids[3], buf));
            Assert.Equal(5, e.Errno);
            Assert.Single(log, l => l.Contains(ids[3].ToString()));
            store.ReadPage(ids[2], buf);   // nothing else is lost
            Assert.Equal(TestOptions.Page(102), buf);
        }
        FsckReport r = Fsck.Run(dir.Path, repair: true);
        string p = Assert.Single(r.Problems);
        Assert.Contains("checksum mismatch", p);
        Assert.Contains("inode 10 page 3", p);
        Assert.Single(r.Unrepairable);
    }

    [Fact]
    public void Damaged_blob_record_is_EIO_and_reported()
    {
        using var dir = new TempDir();
        StoreTestData.Build(dir.Path);
        StoreTestData.DamageRecord(dir.Path, "inodes", StoreKeys.Inode(10));
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            Assert.Throws<MetadataChecksumException>(() => store.Inodes.TryGet(StoreKeys.Inode(10), out _));
            Assert.Equal(2, store.OpenSlotTable(11).Length / 4096 / 3); // the rest is fine
        }
        FsckReport r = Fsck.Run(dir.Path);
        Assert.Contains(r.Problems, p => p.StartsWith("inodes/"));
    }

    [Fact]
    public void Damaged_mapping_record_is_reported_and_refcounts_are_not_lowered()
    {
        using var dir = new TempDir();
        StoreTestData.Build(dir.Path);
        StoreTestData.DamageRecord(dir.Path, "maps", StoreFormat.U64U64Key(11, 0));
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
            Assert.Throws<MetadataChecksumException>(() => store.OpenSlotTable(11));
        FsckReport r = Fsck.Run(dir.Path, repair: true);
        Assert.Contains(r.Problems, p => p.Contains("inode 11: mapping record"));
        Assert.Empty(r.Repaired); // lowering refcounts could free pages the damaged record references
        Assert.NotEmpty(r.Unrepairable);
    }

    [Fact]
    public void Damaged_page_table_refuses_open_and_repair_rebuilds_it()
    {
        using var dir = new TempDir();
        List<PageId> ids = StoreTestData.Build(dir.Path);
        StoreTestData.DamageRecord(dir.Path, "pages", StoreFormat.U64Key(0));
        var e = Assert.Throws<StoreFormatException>(() => Store.Open(dir.Path, TestOptions.Manual()));
        Assert.Contains("page table chunk 0", e.Message);
        FsckReport r = Fsck.Run(dir.Path, repair: true);
        Assert.Contains(r.Repaired, p => p.Contains("chunk 0"));
        Assert.True(Fsck.Run(dir.Path).Clean, Fsck.Run(dir.Path).ToString());
        using Store store = Store.Open(dir.Path, TestOptions.Manual());
        var buf = new byte[4096];
        store.ReadPage(ids[4], buf);
        Assert.Equal(TestOptions.Page(104), buf);
        Assert.Equal(2u, store.RefCount(ids[4]));
    }

    [Fact]
    public void Flipped_byte_anywhere_in_a_blob_value_inside_data_mdb_is_caught()
    {
        using var dir = new TempDir();
        StoreTestData.Build(dir.Path);
        string mdb = Path.Combine(dir.Path, "meta", "data.mdb");
        byte[] file = File.ReadAllBytes(mdb);
        int at = file.AsSpan().IndexOf("attributes-of-inode-10"u8);
        Assert.True(at > 0);
        file[at + 5] ^= 0x20;
        File.WriteAllBytes(mdb, file);
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
            Assert.Throws<MetadataChecksumException>(() => store.Inodes.TryGet(StoreKeys.Inode(10), out _));
        Assert.False(Fsck.Run(dir.Path).Clean);
    }
}

public class FsckMoreTests
{
    [Fact]
    public void Short_page_file_refuses_open_and_fsck_names_the_lost_pages()
    {
        using var dir = new TempDir();
        List<PageId> ids = StoreTestData.Build(dir.Path);
        string pages = Path.Combine(dir.Path, "pages.dat");
        using (var f = new FileStream(pages, FileMode.Open)) f.SetLength(4 * 4096);   // lose slots 4 and 5
        var e = Assert.Throws<StoreFormatException>(() => Store.Open(dir.Path, TestOptions.Manual()));
        Assert.Contains("pages.dat", e.Message);
        FsckReport r = Fsck.Run(dir.Path);
        Assert.Contains(r.Problems, p => p.Contains("pages.dat is 16384 bytes"));
        Assert.Contains(r.Unrepairable, p => p.Contains(ids[4].ToString()) && p.Contains("inode 10 page 4"));
    }

    [Fact]
    public void Fsck_refuses_a_store_that_is_open()
    {
        using var dir = new TempDir();
        StoreTestData.Build(dir.Path);
        using Store open = Store.Open(dir.Path, TestOptions.Manual());
        FsckReport r = Fsck.Run(dir.Path);
        Assert.Contains(r.Problems, p => p.Contains("in use"));
    }

    [Fact]
    public void Damaged_header_fails_clearly_and_changes_nothing()
    {
        using var dir = new TempDir();
        StoreTestData.Build(dir.Path);
        StoreTestData.DamageRecord(dir.Path, "header", "format"u8.ToArray());
        string mdb = Path.Combine(dir.Path, "meta", "data.mdb");
        byte[] before = File.ReadAllBytes(mdb), pagesBefore = File.ReadAllBytes(Path.Combine(dir.Path, "pages.dat"));
        var e = Assert.Throws<StoreFormatException>(() => Store.Open(dir.Path, TestOptions.Manual()));
        Assert.Contains("format header damaged", e.Message);
        Assert.Equal(before, File.ReadAllBytes(mdb));
        Assert.Equal(pagesBefore, File.ReadAllBytes(Path.Combine(dir.Path, "pages.dat")));
    }
}
