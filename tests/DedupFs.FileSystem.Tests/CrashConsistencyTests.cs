// Crash consistency of namespace operations: a worker runs random namespace and data
// operations through the filesystem API while another thread commits and, right after each
// commit (before the next one), copies the store's files — exactly what a crash at that
// moment would leave on disk. Each copy is opened and checked: fsck clean, every entry names
// an existing inode, every inode's link count equals the names that reach it (directories:
// 2 + subdirectories), inodes with no name are marked as orphans, and the next mount sweeps
// them. A commit that saw half of an operation (a name without its inode, a link count
// without its name) fails here.
using System.Buffers.Binary;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Pages;
using DedupFs.Store;

namespace DedupFs.FileSystem.Tests;

public sealed class CrashConsistencyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dedupfs-fs-crash-").FullName;
    private static readonly FuseRequestContext Root = FuseRequestContext.Create();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static StoreOptions Manual => new() { CommitInterval = null, CommitAfterPages = 0, MetadataMapSize = 1L << 30 };

    [Fact]
    public void Every_commit_holds_whole_namespace_operations()
    {
        string live = Path.Combine(_dir, "live");
        var snapshots = new List<string>();
        using (PageEngine engine = PageEngine.Open(live, Manual))
        {
            var fs = new DedupFileSystem(engine, new FileSystemOptions());
            bool stop = false;
            Exception? failure = null;
            var worker = new Thread(() =>
            {
                try
                {
                    RunWorkload(fs, new Random(42), () => Volatile.Read(ref stop));
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            worker.Start();
            int whileRunning = 0;
            for (int i = 0; i < 12 && worker.IsAlive; i++)
            {
                whileRunning++;
                Thread.Sleep(15);
                engine.Sync();
                // Between two commits the files on disk are the last commit: copy them as a crash would leave them.
                string snap = Path.Combine(_dir, $"snap{i}");
                Directory.CreateDirectory(Path.Combine(snap, "meta"));
                File.Copy(Path.Combine(live, "pages.dat"), Path.Combine(snap, "pages.dat"));
                File.Copy(Path.Combine(live, "meta", "data.mdb"), Path.Combine(snap, "meta", "data.mdb"));
                snapshots.Add(snap);
            }
            Volatile.Write(ref stop, true);
            Assert.True(worker.Join(TimeSpan.FromSeconds(60)));
            Assert.Equal(12, whileRunning);
            Assert.Null(failure);
            fs.Dispose();
        }
        Assert.NotEmpty(snapshots);
        int entries = 0;
        foreach (string snap in snapshots) entries = Math.Max(entries, CheckSnapshot(snap));
        Assert.True(entries > 10, "the workload made names");
    }

    private static void RunWorkload(DedupFileSystem fs, Random rng, Func<bool> stop)
    {
        var dirs = new List<ulong> { 1 };
        var data = new byte[6000];
        for (int op = 0; !stop() && op < 1_000_000; op++)
        {
            ulong dir = dirs[rng.Next(dirs.Count)];
            byte[] name = System.Text.Encoding.ASCII.GetBytes($"n{rng.Next(12)}");
            byte[] other = System.Text.Encoding.ASCII.GetBytes($"n{rng.Next(12)}");
            ulong dir2 = dirs[rng.Next(dirs.Count)];
            switch (rng.Next(8))
            {
                case 0:
                    if (fs.MkDir(Root, new NodeId(dir), name, 0x1ED, 0, out FuseEntryOut d) == 0) dirs.Add(d.NodeId);
                    break;
                case 1:
                case 2:
                    if (fs.Create(Root, new NodeId(dir), name, 0x81A4, 0, 2, out FuseEntryOut f, out FuseOpenOut o) == 0)
                    {
                        rng.NextBytes(data);
                        fs.Write(Root, new NodeId(f.NodeId), new FileHandle(o.Fh), rng.Next(10000), data, 0, out _);
                        fs.Release(Root, new NodeId(f.NodeId), new FileHandle(o.Fh), 2, 0, 0);
                    }
                    break;
                case 3:
                    if (fs.Lookup(Root, new NodeId(dir), name, out FuseEntryOut l) == 0) fs.Link(Root, new NodeId(l.NodeId), new NodeId(dir2), other, out _);
                    break;
                case 4:
                    fs.Unlink(Root, new NodeId(dir), name);
                    break;
                case 5:
                    if (fs.RmDir(Root, new NodeId(dir), name) == 0) { /* its node id stays in `dirs`: later ops there fail with ENOENT */ }
                    break;
                case 6:
                    fs.Rename(Root, new NodeId(dir), name, new NodeId(dir2), other, (uint)rng.Next(3) == 2 ? FuseConstants.RenameExchange : 0);
                    break;
                case 7:
                    if (fs.Create(Root, new NodeId(dir), name, 0x81A4, 0, 2, out FuseEntryOut g, out FuseOpenOut go) == 0)
                    {
                        fs.Unlink(Root, new NodeId(dir), name); // unlinked while open: an orphan until released
                        if (rng.Next(2) == 0) fs.Release(Root, new NodeId(g.NodeId), new FileHandle(go.Fh), 2, 0, 0);
                    }
                    break;
            }
        }
    }

    private static int CheckSnapshot(string snap)
    {
        int entriesSeen;
        var fsck = Fsck.Run(snap);
        Assert.True(fsck.Clean, $"{snap}: {string.Join("; ", fsck.Problems)}");
        using (PageEngine engine = PageEngine.Open(snap, Manual))
        {
            Store.Store store = engine.Store;
            var names = new Dictionary<ulong, int>();
            var subdirs = new Dictionary<ulong, int>();
            var inodes = new Dictionary<ulong, (uint Mode, uint Nlink)>();
            foreach (var (key, value) in store.Inodes.List([0]))
            {
                ulong ino = BinaryPrimitives.ReadUInt64BigEndian(key);
                inodes[ino] = (BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(1)), BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(13)));
            }
            foreach (var (key, value) in store.Dirents.List([0]))
            {
                ulong parent = BinaryPrimitives.ReadUInt64BigEndian(key);
                ulong child = BinaryPrimitives.ReadUInt64LittleEndian(value);
                Assert.True(inodes.ContainsKey(child), $"{snap}: entry in {parent} names missing inode {child}");
                Assert.True(inodes.ContainsKey(parent), $"{snap}: entry in missing directory {parent}");
                names[child] = names.GetValueOrDefault(child) + 1;
                if ((inodes[child].Mode & 0xF000) == 0x4000) subdirs[parent] = subdirs.GetValueOrDefault(parent) + 1;
            }
            entriesSeen = names.Values.Sum();
            var orphans = store.Values.List("orphan/"u8).Select(kv => BinaryPrimitives.ReadUInt64BigEndian(kv.Key.AsSpan(7))).ToHashSet();
            foreach (var (ino, (mode, nlink)) in inodes)
            {
                bool isDir = (mode & 0xF000) == 0x4000;
                if (ino == 1) { Assert.Equal(2u + (uint)subdirs.GetValueOrDefault(1UL), nlink); continue; }
                uint expected = isDir ? (names.ContainsKey(ino) ? 2u + (uint)subdirs.GetValueOrDefault(ino) : 0u) : (uint)names.GetValueOrDefault(ino);
                Assert.True(expected == nlink, $"{snap}: inode {ino} has nlink {nlink}, {expected} reach it");
                if (nlink == 0) Assert.Contains(ino, orphans);
            }
        }
        using (PageEngine engine = PageEngine.Open(snap, Manual))
        {
            using var fs = new DedupFileSystem(engine, new FileSystemOptions()); // the next mount sweeps the orphans
            engine.Sync();
            Assert.Empty(engine.Store.Values.List("orphan/"u8));
            Assert.Empty(engine.Verify());
        }
        Assert.True(Fsck.Run(snap).Clean);
        return entriesSeen;
    }
}
