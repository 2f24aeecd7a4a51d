// LOOKUP, FORGET, GETATTR, SETATTR, STATX, STATFS, READLINK: requests about one inode.
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Store;

namespace DedupFs.FileSystem;

public sealed partial class DedupFileSystem
{
    public int Lookup(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, out FuseEntryOut entry)
    {
        entry = default;
        if (name.Length > NameMax) return Errno.ENAMETOOLONG;
        if (ControlDirectory.Owns(parent.Value)) return _control.Lookup(parent.Value, name, out entry);
        if (parent.Value == InodeTable.FuseRoot && name.SequenceEqual(ControlDirectory.NameBytes)) return _control.LookupSelf(out entry);
        try
        {
            lock (_ns)
            {
                Inode? dir = _inodes.Get(parent.Value);
                if (dir == null) return Errno.ENOENT;
                if (!dir.IsDir) return Errno.ENOTDIR;
                Inode? child;
                if (name.SequenceEqual("."u8)) child = dir;
                else if (name.SequenceEqual(".."u8)) child = _inodes.Get(dir.Parent);
                else child = FindChild(dir.Ino, name);
                if (child == null) return Errno.ENOENT;
                entry = EntryFor(child);
                return Errno.Success;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // The inode a name in a directory refers to, or null. Namespace lock held.
    private Inode? FindChild(ulong dir, ReadOnlySpan<byte> name)
    {
        if (!Store.Dirents.TryGet(StoreKeys.Dirent(dir, name), out byte[] value)) return null;
        var (child, _) = Inode.ReadDirent(value);
        Inode? n = _inodes.Get(child);
        if (n == null) Log($"dedupfs: entry {dir}/{System.Text.Encoding.UTF8.GetString(name)} names missing inode {child}");
        return n;
    }

    public void Forget(NodeId node, ulong count)
    {
        if (ControlDirectory.Owns(node.Value)) return;
        lock (_ns)
        {
            try
            {
                _inodes.Forget(node.Value, count);
            }
            catch (Exception e)
            {
                Fail(e);
            }
        }
        FreeDoomed();
    }

    public void BatchForget(ReadOnlySpan<ForgetItem> items)
    {
        lock (_ns)
        {
            foreach (var item in items)
            {
                if (ControlDirectory.Owns(item.Node.Value)) continue;
                try
                {
                    _inodes.Forget(item.Node.Value, item.Count);
                }
                catch (Exception e)
                {
                    Fail(e);
                }
            }
        }
        FreeDoomed();
    }

    // The inode behind a node id the kernel holds a reference to: lock-free when live.
    private Inode? Node(NodeId node)
    {
        Inode? n = _inodes.TryGetLive(node.Value);
        if (n != null) return n;
        lock (_ns) return _inodes.Get(node.Value);
    }

    // Node(), with what goes wrong as the reply's errno (ENOENT, or the store's error); n is
    // set only on success.
    private int NodeOrErrno(NodeId node, out Inode n)
    {
        Inode? found;
        try
        {
            found = Node(node);
        }
        catch (Exception e)
        {
            n = null!;
            return Fail(e);
        }
        n = found!;
        return found == null ? Errno.ENOENT : Errno.Success;
    }

    public int GetAttr(FuseRequestContext ctx, NodeId node, FileHandle? fh, out FuseAttrOut attr)
    {
        attr = default;
        if (ControlDirectory.Owns(node.Value)) return _control.GetAttr(node.Value, out attr);
        try
        {
            Inode? n = Node(node);
            if (n == null) return Errno.ENOENT;
            FillAttrOut(n, out attr);
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int SetAttr(FuseRequestContext ctx, NodeId node, in FuseSetAttrIn changes, out FuseAttrOut attr)
    {
        attr = default;
        if (ControlDirectory.Owns(node.Value))
        {
            // Shell redirections truncate before writing a request: accept and ignore.
            return (changes.Valid & ~(SetAttrValid.Size | SetAttrValid.Fh | SetAttrValid.LockOwner | SetAttrValid.Mtime | SetAttrValid.MtimeNow | SetAttrValid.Ctime)) == 0
                ? _control.GetAttr(node.Value, out attr) : Errno.EPERM;
        }
        if (ReadOnly) return Errno.EROFS;
        try
        {
            Inode? n = Node(node);
            if (n == null) return Errno.ENOENT;
            SetAttrValid valid = changes.Valid;
            using (Store.EnterMutation())
            {
                if ((valid & SetAttrValid.Size) != 0)
                {
                    if (n.IsDir) return Errno.EISDIR;
                    if (!n.IsReg) return Errno.EINVAL;
                    if (changes.Size > MaxFileSize) return Errno.EFBIG;
                    n.Mapping!.Truncate((long)changes.Size);
                }

                long now = Inode.Now();
                lock (n.Lock)
                {
                    if ((valid & SetAttrValid.Mode) != 0) n.Mode = (n.Mode & Inode.TypeMask) | (changes.Mode & 0xFFF);
                    if ((valid & (SetAttrValid.Uid | SetAttrValid.Gid)) != 0)
                    {
                        bool changed = ((valid & SetAttrValid.Uid) != 0 && changes.Uid != n.Uid) || ((valid & SetAttrValid.Gid) != 0 && changes.Gid != n.Gid);
                        if ((valid & SetAttrValid.Uid) != 0) n.Uid = changes.Uid;
                        if ((valid & SetAttrValid.Gid) != 0) n.Gid = changes.Gid;
                        // chown(2) of a non-directory drops set-user-ID, and set-group-ID when
                        // group-executable, as ext4 does (the kernel usually sends the new mode too).
                        if (changed && (valid & SetAttrValid.Mode) == 0 && !n.IsDir) n.Mode &= ~KilledBits(n.Mode);
                        // The merge domain is the owner: later merges follow the new owner.
                        if (n.IsReg) n.Mapping!.MergeDomain = n.Uid;
                    }
                    if ((valid & SetAttrValid.Size) != 0 && (valid & (SetAttrValid.Mtime | SetAttrValid.MtimeNow)) == 0) n.MtimeNs = now;
                    if ((valid & SetAttrValid.AtimeNow) != 0) n.AtimeNs = now;
                    else if ((valid & SetAttrValid.Atime) != 0) n.AtimeNs = ToNs(changes.Atime, changes.AtimeNsec);
                    if ((valid & SetAttrValid.MtimeNow) != 0) n.MtimeNs = now;
                    else if ((valid & SetAttrValid.Mtime) != 0) n.MtimeNs = ToNs(changes.Mtime, changes.MtimeNsec);
                    n.CtimeNs = (valid & SetAttrValid.Ctime) != 0 ? ToNs(changes.Ctime, changes.CtimeNsec) : now;
                }
                _inodes.Persist(n);
            }
            FillAttrOut(n, out attr);
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // The privilege bits a write or chown by someone other than root removes (should_remove_suid).
    private static uint KilledBits(uint mode) =>
        Inode.SetUid | ((mode & (Inode.SetGid | Inode.GroupExec)) == (Inode.SetGid | Inode.GroupExec) ? Inode.SetGid : 0);

    public int StatX(FuseRequestContext ctx, NodeId node, FileHandle? fh, uint statxFlags, uint mask, out FuseStatxOut statx)
    {
        statx = default;
        FuseAttr a;
        long btime;
        if (ControlDirectory.Owns(node.Value))
        {
            int rc = _control.GetAttr(node.Value, out FuseAttrOut ao);
            if (rc != 0) return rc;
            a = ao.Attr;
            btime = ToNs(a.Ctime, a.CtimeNsec);
        }
        else
        {
            int rc = NodeOrErrno(node, out Inode n);
            if (rc != 0) return rc;
            a = AttrOf(n);
            btime = n.BtimeNs;
        }
        Split(Options.AttrTimeout, out statx.AttrValid, out statx.AttrValidNsec);
        statx.Stat = new FuseStatx
        {
            Mask = 0x7FF | 0x800, // STATX_BASIC_STATS | STATX_BTIME
            BlkSize = a.BlkSize, Nlink = a.Nlink, Uid = a.Uid, Gid = a.Gid, Mode = (ushort)a.Mode,
            Ino = a.Ino, Size = a.Size, Blocks = a.Blocks,
            Atime = new FuseSxTime { TvSec = (long)a.Atime, TvNsec = a.AtimeNsec },
            Mtime = new FuseSxTime { TvSec = (long)a.Mtime, TvNsec = a.MtimeNsec },
            Ctime = new FuseSxTime { TvSec = (long)a.Ctime, TvNsec = a.CtimeNsec },
            Btime = new FuseSxTime { TvSec = (long)Seconds(btime), TvNsec = Nanos(btime) },
            // new_encode_dev, as the kernel passed it to MKNOD
            RdevMajor = (a.Rdev & 0xFFF00) >> 8,
            RdevMinor = (a.Rdev & 0xFF) | ((a.Rdev >> 12) & 0xFFF00),
        };
        return Errno.Success;
    }

    public int StatFs(FuseRequestContext ctx, NodeId node, out FuseKStatFs stat)
    {
        stat = default;
        try
        {
            StoreSpace space = Store.Space;
            long hostFree = 0;
            try
            {
                hostFree = new DriveInfo(Store.Directory).AvailableFreeSpace / 4096;
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
            {
                hostFree = 0;
            }
            // Used is what the store holds (live page slots and the metadata file), so sharing
            // shows as space not used; free is the host's free space plus reusable slots.
            long used = space.LiveSlots + (space.MetadataBytes + 4095) / 4096;
            long free = hostFree + space.FreeSlots + space.PendingSlots;
            const ulong files = 1UL << 32;
            stat = new FuseKStatFs
            {
                Bsize = 4096, Frsize = 4096,
                Blocks = (ulong)(used + free), Bfree = (ulong)free, Bavail = (ulong)free,
                Files = files, Ffree = files - Math.Min(files, _inodes.NextIno), NameLen = NameMax,
            };
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int ReadLink(FuseRequestContext ctx, NodeId node, Span<byte> target, out int length)
    {
        length = 0;
        int rc = NodeOrErrno(node, out Inode n);
        if (rc != 0) return rc;
        if (n.Target == null) return Errno.EINVAL;
        if (n.Target.Length > target.Length) return Errno.ENAMETOOLONG;
        n.Target.CopyTo(target);
        length = n.Target.Length;
        return Errno.Success;
    }
}
