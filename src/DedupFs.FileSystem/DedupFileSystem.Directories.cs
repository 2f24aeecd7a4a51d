// OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR.
//
// A listing is a snapshot per open directory, taken when the kernel reads from offset 0 (at
// opendir's first read, and again after rewinddir): ".", "..", then the entries in key order
// (one prefix listing of Store.Dirents, a merge of committed and pending entries, O(n)). The
// offset cookie of an entry is its position + 1, so a listing resumes exactly where the last
// reply stopped however the directory changes meanwhile, and a 100k-entry directory costs one
// listing, not one per reply.
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Store;

namespace DedupFs.FileSystem;

public sealed partial class DedupFileSystem
{
    public int OpenDir(FuseRequestContext ctx, NodeId node, int flags, out FuseOpenOut open)
    {
        open = default;
        if (ControlDirectory.Owns(node.Value))
        {
            open.Fh = _handles.Add(new ControlHandle(node.Value, []));
            return ControlDirectory.IsDirectory(node.Value) ? Errno.Success : Errno.ENOTDIR;
        }
        try
        {
            lock (_ns)
            {
                Inode? n = _inodes.Get(node.Value);
                if (n == null) return Errno.ENOENT;
                if (!n.IsDir) return Errno.ENOTDIR;
                n.OpenHandles++;
                open.Fh = _handles.Add(new OpenDirectory(n));
                return Errno.Success;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int ReleaseDir(FuseRequestContext ctx, NodeId node, FileHandle fh, int flags)
    {
        if (_handles.Remove(fh.Value) is not OpenDirectory dir) return Errno.Success;
        lock (_ns)
        {
            try
            {
                dir.Node.OpenHandles--;
                _inodes.MaybeRelease(dir.Node);
            }
            catch (Exception e)
            {
                return Fail(e);
            }
        }
        FreeDoomed();
        return Errno.Success;
    }

    public int FsyncDir(FuseRequestContext ctx, NodeId node, FileHandle fh, bool dataOnly) => Sync();

    public int ReadDir(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ref DirectoryWriter writer)
    {
        if (ControlDirectory.Owns(node.Value)) return _control.ReadDir(node.Value, offset, ref writer);
        OpenDirectory? dir = _handles.Get<OpenDirectory>(fh.Value);
        if (dir == null) return Errno.EBADF;
        try
        {
            List<(byte[] Name, ulong Ino, uint Type)> entries;
            lock (dir.Lock)
            {
                if (offset == 0 || dir.Entries == null) dir.Entries = Snapshot(dir.Node);
                entries = dir.Entries;
            }
            for (long i = offset; i < entries.Count + 2; i++)
            {
                ReadOnlySpan<byte> name = i == 0 ? "."u8 : i == 1 ? ".."u8 : entries[(int)i - 2].Name;
                if (!writer.IsPlus)
                {
                    var (ino, type) = i == 0 ? (dir.Node.Ino, Inode.Dir) : i == 1 ? (dir.Node.Parent, Inode.Dir) : (entries[(int)i - 2].Ino, entries[(int)i - 2].Type);
                    if (!writer.TryAdd(name, ino, type, (ulong)(i + 1))) break;
                    continue;
                }
                lock (_ns)
                {
                    Inode? n = i == 0 ? dir.Node : i == 1 ? _inodes.Get(dir.Node.Parent) : _inodes.Get(entries[(int)i - 2].Ino);
                    if (n == null) continue; // removed since the snapshot
                    FuseEntryOut entry = i < 2 ? new FuseEntryOut { Attr = AttrOf(n) } : EntryOutOf(n);
                    if (!writer.TryAdd(name, in entry, (ulong)(i + 1))) break;
                    if (writer.CountsLookup(name, entry.NodeId)) _inodes.AddLookup(n);
                }
            }
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    private List<(byte[] Name, ulong Ino, uint Type)> Snapshot(Inode dir)
    {
        lock (_ns)
        {
            var listed = Store.Dirents.List(StoreKeys.DirentPrefix(dir.Ino));
            var entries = new List<(byte[], ulong, uint)>(listed.Count);
            foreach (var (key, value) in listed)
            {
                var (child, type) = Inode.ReadDirent(value);
                entries.Add((StoreKeys.NameOf(key).ToArray(), child, type));
            }
            return entries;
        }
    }
}
