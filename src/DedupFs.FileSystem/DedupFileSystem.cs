// The DedupFs filesystem: FUSE requests answered over a page engine and its store.
//
// Layout of this type (one partial file per concern):
//   DedupFileSystem.cs             construction, INIT/DESTROY, errno mapping, entry/attr replies
//   DedupFileSystem.Nodes.cs       LOOKUP, FORGET, GETATTR, SETATTR, STATX, STATFS, READLINK, ACCESS
//   DedupFileSystem.Namespace.cs   MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME, CREATE, TMPFILE
//   DedupFileSystem.Files.cs       OPEN, READ, WRITE, RELEASE, FSYNC, FALLOCATE, LSEEK, COPY_FILE_RANGE
//   DedupFileSystem.Directories.cs OPENDIR, READDIR(PLUS), RELEASEDIR, FSYNCDIR
//   DedupFileSystem.Xattrs.cs      SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR
//   DedupFileSystem.Merge.cs       merge advice (user.dedupfs.merge) for the merge scanner
//   ControlDirectory.cs            MNT/.dedupfs: statistics and request files (clone, shares)
//
// Concurrency: namespace operations and everything that changes the inode table or its counts
// take the namespace lock (_ns), then the store gate (EnterMutation) for their
// check-then-change sequence, so a commit never sees half of one. READ and WRITE take neither:
// they find the inode lock-free and go straight to its mapping, whose stripe locks order them.
// Lock order: _ns -> store gate -> mapping stripes -> inode lock (a leaf).
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Pages;
using DedupFs.Store;

namespace DedupFs.FileSystem;

/// <summary>The DedupFs filesystem: the FUSE requests answered over a page engine and its store.</summary>
public sealed partial class DedupFileSystem : IFuseFileSystem, IDisposable
{
    /// <summary>Largest file: 16 TiB (2^32 pages), as ext4 with 4 KiB blocks; the store's 32-bit page ids
    /// bound a store's unique data at the same figure.</summary>
    public const long MaxFileSize = 1L << 44;

    private const int NameMax = 255;
    private const int PathMax = 4096;

    // Guards the namespace (dirents), the inode table and lookup/handle counts. See the top of the file.
    private readonly Lock _ns = new();
    private readonly InodeTable _inodes;
    private readonly ControlDirectory _control;
    private readonly Handles _handles = new();
    private FuseNotifier _notifier = FuseNotifier.Disconnected;
    private readonly TextWriter? _log;
    private int _disposed;

    public DedupFileSystem(PageEngine engine, FileSystemOptions options)
    {
        Engine = engine;
        Options = options;
        _log = options.Log is null ? null : TextWriter.Synchronized(options.Log); // logged from every worker thread
        // Before the first mapping opens (the root's table load and the orphan sweep below can open
        // some): every Mapping object then carries its file's merge advice and owner. A caller that
        // installed its own callback keeps it.
        engine.Options.ConfigureMapping ??= ConfigureMapping;
        _inodes = new InodeTable(engine);
        _control = new ControlDirectory(this);
        lock (_ns)
        {
            if (_inodes.Get(InodeTable.FuseRoot) == null) CreateRoot();
            int swept = _inodes.SweepOrphans();
            if (swept > 0) Log($"dedupfs: freed {swept} unlinked inode(s) left by an earlier crash");
        }
        Engine.Store.Committing += _inodes.WriteDirty;
    }

    public PageEngine Engine { get; }

    public FileSystemOptions Options { get; }

    /// <summary>Name of the control directory in the mount's root.</summary>
    public const string ControlDirectoryName = ".dedupfs";

    /// <summary>Inodes held in memory (tests, statistics).</summary>
    public int LiveInodes => _inodes.LiveCount;

    private DedupFs.Store.Store Store => Engine.Store;

    /// <summary>Commits everything; the engine is the caller's to dispose.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            FreeDoomed();
            Engine.Sync();
        }
        finally
        {
            Engine.Store.Committing -= _inodes.WriteDirty;
            if (Engine.Options.ConfigureMapping == (Action<Mapping>)ConfigureMapping) Engine.Options.ConfigureMapping = null;
        }
    }

    public void Init(FuseConnection connection)
    {
        _notifier = connection.Notifier;
        if (Options.Cache == CacheMode.Shared) connection.Want |= InitFlags.DirectIoAllowMmap;
        connection.Want |= InitFlags.DoReadDirPlus | InitFlags.ReadDirPlusAuto;
    }

    public void Destroy()
    {
        try
        {
            FreeDoomed();
            Engine.Sync();
        }
        catch (Exception e)
        {
            Log($"dedupfs: commit at unmount failed: {e.Message}");
        }
    }

    private void CreateRoot()
    {
        long now = Inode.Now();
        var root = new Inode(InodeTable.FuseRoot)
        {
            Mode = Inode.Dir | 0x1ED,
            Uid = Options.RootUid,
            Gid = Options.RootGid,
            Nlink = 2,
            Parent = InodeTable.FuseRoot,
            Generation = 1,
            AtimeNs = now, MtimeNs = now, CtimeNs = now, BtimeNs = now,
        };
        using (Store.EnterMutation())
        {
            if (_inodes.NextIno < 2) _inodes.Allocate();
            _inodes.Add(root);
        }
        Engine.Sync();
    }

    // Frees inodes that lost their last name and reference. Neither the namespace lock nor a store mutation held.
    private void FreeDoomed()
    {
        try
        {
            _inodes.FreeDoomed();
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    internal void Log(string line) => _log?.WriteLine(line);

    // The errno a failed store or page operation answers with.
    private int Fail(Exception e)
    {
        switch (e)
        {
            case PageChecksumException:
                return Errno.EIO;
            case StoreException s:
                return s.Errno > 0 ? s.Errno : Errno.EIO;
            case ArgumentException:
                return Errno.EINVAL;
            default:
                Log($"dedupfs: unexpected {e}");
                return Errno.EIO;
        }
    }

    private bool ReadOnly => Options.ReadOnly;

    private static ulong Seconds(long ns) => (ulong)(ns / 1_000_000_000L - (ns % 1_000_000_000L < 0 ? 1 : 0));

    private static uint Nanos(long ns) => (uint)(((ns % 1_000_000_000L) + 1_000_000_000L) % 1_000_000_000L);

    private static long ToNs(ulong seconds, uint nsec) => (long)seconds * 1_000_000_000L + nsec;

    private static void Split(TimeSpan t, out ulong seconds, out uint nanos)
    {
        long ticks = Math.Max(0, t.Ticks);
        seconds = (ulong)(ticks / TimeSpan.TicksPerSecond);
        nanos = (uint)(ticks % TimeSpan.TicksPerSecond * 100);
    }

    internal static FuseAttr AttrOf(Inode n)
    {
        lock (n.Lock)
        {
            long size = n.Size;
            return new FuseAttr
            {
                Ino = n.Ino,
                Size = (ulong)size,
                // Blocks are what the size would occupy, holes included: counting mapped slots
                // would need a walk of the mapping on every stat.
                Blocks = n.IsReg ? (ulong)((size + 4095) / 4096 * 8) : n.IsDir ? 8UL : 0,
                Atime = Seconds(n.AtimeNs), AtimeNsec = Nanos(n.AtimeNs),
                Mtime = Seconds(n.MtimeNs), MtimeNsec = Nanos(n.MtimeNs),
                Ctime = Seconds(n.CtimeNs), CtimeNsec = Nanos(n.CtimeNs),
                Mode = n.Mode,
                Nlink = n.Nlink,
                Uid = n.Uid,
                Gid = n.Gid,
                Rdev = n.Rdev,
                BlkSize = 4096,
            };
        }
    }

    private void FillAttrOut(Inode n, out FuseAttrOut attr)
    {
        attr = default;
        Split(Options.AttrTimeout, out attr.AttrValid, out attr.AttrValidNsec);
        attr.Attr = AttrOf(n);
    }

    // An entry reply; the kernel takes one lookup reference on it. Namespace lock held.
    private FuseEntryOut EntryFor(Inode n)
    {
        _inodes.AddLookup(n);
        return EntryOutOf(n);
    }

    private FuseEntryOut EntryOutOf(Inode n)
    {
        var e = new FuseEntryOut { NodeId = n.Ino, Generation = n.Generation, Attr = AttrOf(n) };
        Split(Options.EntryTimeout, out e.EntryValid, out e.EntryValidNsec);
        Split(Options.AttrTimeout, out e.AttrValid, out e.AttrValidNsec);
        return e;
    }

    // A regular file was changed by the daemon rather than through the kernel's page cache (a
    // clone into it): in kernel cache mode the cached pages of that range are stale. The
    // notification is queued, never written from this thread (see FuseNotifier).
    private void InvalidateData(ulong ino, long offset, long length)
    {
        if (Options.Cache == CacheMode.Kernel) _notifier.InvalidateInode(new NodeId(ino), offset, length);
    }

    private static void Touch(Inode n, bool mtime, bool ctime)
    {
        long now = Inode.Now();
        lock (n.Lock)
        {
            if (mtime) n.MtimeNs = now;
            if (ctime) n.CtimeNs = now;
        }
    }
}
