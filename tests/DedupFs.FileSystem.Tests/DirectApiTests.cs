// The filesystem driven through its IFuseFileSystem methods, without a mount: crash-shaped
// situations a mount cannot produce on demand (a daemon that stops with an unlinked file still
// open), and the commit path of in-memory attributes.
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Pages;
using DedupFs.Store;

namespace DedupFs.FileSystem.Tests;

public sealed class DirectApiTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dedupfs-fs-api-").FullName;
    private static readonly FuseRequestContext Root = FuseRequestContext.Create();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private PageEngine OpenEngine() => PageEngine.Open(_dir, new StoreOptions { CommitInterval = null, CommitAfterPages = 0, MetadataMapSize = 1L << 30 });

    [Fact]
    public void An_unlinked_file_left_open_at_a_crash_is_freed_at_the_next_mount()
    {
        ulong ino;
        using (PageEngine engine = OpenEngine())
        {
            var fs = new DedupFileSystem(engine, new FileSystemOptions());
            Assert.Equal(0, fs.Create(Root, new NodeId(1), "doomed"u8, 0x81A4, 0, 2, out FuseEntryOut entry, out FuseOpenOut open));
            ino = entry.NodeId;
            Assert.Equal(0, fs.Write(Root, new NodeId(ino), new FileHandle(open.Fh), 0, new byte[10000].Select((_, i) => (byte)(i + 1)).ToArray(), 0, out int written));
            Assert.Equal(10000, written);
            Assert.Equal(0, fs.Unlink(Root, new NodeId(1), "doomed"u8));
            Assert.True(engine.Store.Inodes.TryGet(StoreKeys.Inode(ino), out _), "still open: kept");
            fs.Dispose(); // commits; the handle is never released: the daemon "crashes" here
            Assert.True(engine.Statistics.UniquePages > 0);
        }
        using (PageEngine engine = OpenEngine())
        {
            using var fs = new DedupFileSystem(engine, new FileSystemOptions());
            Assert.False(engine.Store.Inodes.TryGet(StoreKeys.Inode(ino), out _));
            Assert.Equal(0, engine.Statistics.UniquePages);
            Assert.Empty(engine.Store.Values.List("orphan/"u8));
        }
    }

    [Fact]
    public void Attributes_changed_by_writes_reach_the_store_at_commit_only()
    {
        ulong ino;
        byte[] committed;
        using (PageEngine engine = OpenEngine())
        {
            using var fs = new DedupFileSystem(engine, new FileSystemOptions());
            Assert.Equal(0, fs.Create(Root, new NodeId(1), "f"u8, 0x81A4, 0, 2, out FuseEntryOut entry, out FuseOpenOut open));
            ino = entry.NodeId;
            engine.Sync();
            var set = new FuseSetAttrIn { Valid = SetAttrValid.Mtime, Mtime = 1, MtimeNsec = 0 };
            Assert.Equal(0, fs.SetAttr(Root, new NodeId(ino), in set, out _));
            engine.Sync();
            Assert.True(engine.Store.Inodes.TryGet(StoreKeys.Inode(ino), out byte[] baseline));
            for (int i = 0; i < 100; i++)
                Assert.Equal(0, fs.Write(Root, new NodeId(ino), new FileHandle(open.Fh), i * 10, "0123456789"u8, 0, out _));
            Assert.True(engine.Store.Inodes.TryGet(StoreKeys.Inode(ino), out byte[] during));
            Assert.Equal(Convert.ToHexString(baseline), Convert.ToHexString(during)); // no record write per WRITE
            engine.Sync();
            Assert.True(engine.Store.Inodes.TryGet(StoreKeys.Inode(ino), out committed));
            Assert.NotEqual(Convert.ToHexString(during), Convert.ToHexString(committed)); // the commit took the new mtime
            Assert.Equal(0, fs.GetAttr(Root, new NodeId(ino), null, out FuseAttrOut attr));
            Assert.Equal(1000UL, attr.Attr.Size);
            Assert.True(attr.Attr.Mtime > 1);
        }
        using (PageEngine engine = OpenEngine())
        {
            using var fs = new DedupFileSystem(engine, new FileSystemOptions());
            Assert.Equal(0, fs.Lookup(Root, new NodeId(1), "f"u8, out FuseEntryOut entry));
            Assert.Equal(ino, entry.NodeId);
            Assert.Equal(1000UL, entry.Attr.Size);
            Assert.True(entry.Attr.Mtime > 1);
        }
    }

    [Fact]
    public void Root_is_created_once_with_the_configured_owner()
    {
        using (PageEngine engine = OpenEngine())
        {
            using var fs = new DedupFileSystem(engine, new FileSystemOptions { RootUid = 1000, RootGid = 100 });
            Assert.Equal(0, fs.GetAttr(Root, new NodeId(1), null, out FuseAttrOut attr));
            Assert.Equal((1000u, 100u, 0x41EDu), (attr.Attr.Uid, attr.Attr.Gid, attr.Attr.Mode));
        }
        using (PageEngine engine = OpenEngine())
        {
            using var fs = new DedupFileSystem(engine, new FileSystemOptions { RootUid = 5, RootGid = 5 });
            Assert.Equal(0, fs.GetAttr(Root, new NodeId(1), null, out FuseAttrOut attr));
            Assert.Equal((1000u, 100u), (attr.Attr.Uid, attr.Attr.Gid));
        }
    }

    [Fact]
    public void Clone_and_shares_work_without_a_mount()
    {
        using PageEngine engine = OpenEngine();
        using var fs = new DedupFileSystem(engine, new FileSystemOptions());
        Assert.Equal(0, fs.Create(Root, new NodeId(1), "a"u8, 0x81A4, 0, 2, out FuseEntryOut entry, out FuseOpenOut open));
        var data = new byte[8192];
        new Random(1).NextBytes(data);
        Assert.Equal(0, fs.Write(Root, new NodeId(entry.NodeId), new FileHandle(open.Fh), 0, data, 0, out _));
        Assert.Equal(0, fs.ClonePath("a", "b"));
        Assert.Equal(Errno.EEXIST, fs.ClonePath("a", "b"));
        Assert.Equal(0, fs.SharesOf("a", out string json));
        Assert.Contains("\"b\"", json);
        Assert.Equal("2", fs.Statistics()["pages_shared"]);
    }

    [Fact]
    public void A_read_only_filesystem_refuses_every_change()
    {
        using (PageEngine engine = OpenEngine())
        {
            using var fs = new DedupFileSystem(engine, new FileSystemOptions());
            Assert.Equal(0, fs.MkDir(Root, new NodeId(1), "d"u8, 0x1ED, 0, out _));
        }
        using (PageEngine engine = OpenEngine())
        {
            using var fs = new DedupFileSystem(engine, new FileSystemOptions { ReadOnly = true });
            Assert.Equal(Errno.EROFS, fs.MkDir(Root, new NodeId(1), "e"u8, 0x1ED, 0, out _));
            Assert.Equal(Errno.EROFS, fs.Create(Root, new NodeId(1), "f"u8, 0x81A4, 0, 2, out _, out _));
            Assert.Equal(Errno.EROFS, fs.RmDir(Root, new NodeId(1), "d"u8));
            Assert.Equal(Errno.EROFS, fs.Rename(Root, new NodeId(1), "d"u8, new NodeId(1), "g"u8, 0));
            Assert.Equal(Errno.EROFS, fs.SetXattr(Root, new NodeId(1), "user.a"u8, "1"u8, 0));
            Assert.Equal(Errno.EROFS, fs.ClonePath("d", "h"));
            Assert.Equal(Errno.EROFS, fs.MkNod(Root, new NodeId(1), "n"u8, 0x1000 | 0x1A4, 0, 0, out _));
            Assert.Equal(0, fs.Lookup(Root, new NodeId(1), "d"u8, out FuseEntryOut entry));
            Assert.Equal(0, fs.GetAttr(Root, new NodeId(entry.NodeId), null, out _));
        }
    }

    [Fact]
    public void Steady_state_writes_allocate_nothing_in_the_filesystem_layer()
    {
        using PageEngine engine = OpenEngine();
        using var fs = new DedupFileSystem(engine, new FileSystemOptions());
        Assert.Equal(0, fs.Create(Root, new NodeId(1), "hot"u8, 0x81A4, 0, 2, out FuseEntryOut entry, out FuseOpenOut open));
        var node = new NodeId(entry.NodeId);
        var fh = new FileHandle(open.Fh);
        var data = new byte[4096];
        for (int i = 0; i < 200; i++)
        {
            data[0] = (byte)i;
            Assert.Equal(0, fs.Write(Root, node, fh, 100, data, 0, out _)); // unaligned: read-modify-write of two pages
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            data[0] = (byte)i;
            fs.Write(Root, node, fh, 100, data, 0, out _);
        }
        long perWrite = (GC.GetAllocatedBytesForCurrentThread() - before) / 1000;
        Assert.True(perWrite < 64, $"{perWrite} bytes allocated per WRITE");
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) fs.GetAttr(Root, node, fh, out _);
        Assert.True((GC.GetAllocatedBytesForCurrentThread() - before) / 1000 < 64);
    }
}
