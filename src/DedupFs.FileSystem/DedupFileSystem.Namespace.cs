// MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME, CREATE, TMPFILE: changes of names.
//
// Each operation checks and changes under the namespace lock, and makes its store changes
// (dirents, the records of every inode whose nlink, times or parent changed, the next-inode
// counter, orphan markers) inside one store mutation, so any commit holds all of it or none.
// An inode that loses its last name while the kernel still references it (or a handle is
// open) keeps an orphan marker until it is freed (InodeTable.MaybeRelease).
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Store;

namespace DedupFs.FileSystem;

public sealed partial class DedupFileSystem
{
    private const int OExcl = 0x80, OTrunc = 0x200, OAccMode = 3;

    public int MkNod(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint rdev, uint umask, out FuseEntryOut entry)
    {
        uint type = mode & Inode.TypeMask;
        if (type is not (Inode.Reg or Inode.Fifo or Inode.Chr or Inode.Blk or Inode.Sock))
        {
            entry = default;
            return type == 0 ? MkNod(ctx, parent, name, mode | Inode.Reg, rdev, umask, out entry) : Errno.EINVAL;
        }
        return MakeNode(ctx, parent, name, type | (mode & ~umask & 0xFFF), type is Inode.Chr or Inode.Blk ? rdev : 0, null, out entry, out _);
    }

    public int MkDir(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint umask, out FuseEntryOut entry) =>
        MakeNode(ctx, parent, name, Inode.Dir | (mode & ~umask & 0xFFF), 0, null, out entry, out _);

    public int Symlink(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, out FuseEntryOut entry)
    {
        if (target.Length >= PathMax)
        {
            entry = default;
            return Errno.ENAMETOOLONG;
        }
        return MakeNode(ctx, parent, name, Inode.Lnk | 0x1FF, 0, target.ToArray(), out entry, out _);
    }

    public int Create(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint umask, int flags, out FuseEntryOut entry, out FuseOpenOut open)
    {
        open = default;
        entry = default;
        if (ControlDirectory.Owns(parent.Value)) return Errno.EACCES;
        try
        {
            lock (_ns)
            {
                Inode? n;
                if (name.Length <= NameMax && _inodes.Get(parent.Value) is { IsDir: true } dir && (n = FindChild(dir.Ino, name)) != null)
                {
                    // The name appeared since the kernel's lookup: open it unless O_EXCL.
                    if ((flags & OExcl) != 0) return Errno.EEXIST;
                    if (n.IsDir) return Errno.EISDIR;
                    int rc = OpenLocked(n, flags, out open);
                    if (rc != 0) return rc;
                    rc = TruncateOnOpen(n, flags, ref open);
                    if (rc != 0) return rc;
                    entry = EntryFor(n);
                    return Errno.Success;
                }
                int status = MakeNode(ctx, parent, name, Inode.Reg | (mode & ~umask & 0xFFF), 0, null, out entry, out Inode? created);
                if (status != 0) return status;
                return OpenLocked(created!, flags & ~OTrunc, out open);
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int TmpFile(FuseRequestContext ctx, NodeId parent, uint mode, uint umask, int flags, out FuseEntryOut entry, out FuseOpenOut open)
    {
        entry = default;
        open = default;
        if (ReadOnly) return Errno.EROFS;
        if (ControlDirectory.Owns(parent.Value)) return Errno.EACCES;
        try
        {
            lock (_ns)
            {
                Inode? dir = _inodes.Get(parent.Value);
                if (dir == null || dir.Nlink == 0) return Errno.ENOENT;
                if (!dir.IsDir) return Errno.ENOTDIR;
                Inode n;
                using (Store.EnterMutation())
                {
                    n = NewInode(ctx, dir, Inode.Reg | (mode & ~umask & 0xFFF), 0, null);
                    n.Nlink = 0;
                    n.Linkable = true;
                    _inodes.Add(n);
                    InheritMergeAdvice(dir, n);
                    _inodes.SetOrphan(n.Ino, true);
                }
                entry = EntryFor(n);
                return OpenLocked(n, flags & ~OTrunc, out open);
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // A new inode in memory, owned by the caller (set-group-ID directories pass their group on). Mutation held.
    private Inode NewInode(FuseRequestContext ctx, Inode dir, uint mode, uint rdev, byte[]? target)
    {
        long now = Inode.Now();
        bool inheritGroup = (dir.Mode & Inode.SetGid) != 0;
        if (inheritGroup && (mode & Inode.TypeMask) == Inode.Dir) mode |= Inode.SetGid;
        return new Inode(_inodes.Allocate())
        {
            Mode = mode,
            Uid = ctx.Uid,
            Gid = inheritGroup ? dir.Gid : ctx.Gid,
            Nlink = (mode & Inode.TypeMask) == Inode.Dir ? 2u : 1u,
            Rdev = rdev,
            Generation = 1,
            Parent = dir.Ino,
            Target = target,
            AtimeNs = now, MtimeNs = now, CtimeNs = now, BtimeNs = now,
        };
    }

    // Checks a new name in a directory. Namespace lock held.
    private int CheckNewName(ulong parent, ReadOnlySpan<byte> name, out Inode? dir)
    {
        dir = null;
        if (name.Length > NameMax) return Errno.ENAMETOOLONG;
        if (ReadOnly) return Errno.EROFS;
        if (ControlDirectory.Owns(parent)) return Errno.EACCES;
        if (parent == InodeTable.FuseRoot && name.SequenceEqual(ControlDirectory.NameBytes)) return Errno.EEXIST;
        dir = _inodes.Get(parent);
        if (dir == null || dir.Nlink == 0) return Errno.ENOENT;
        if (!dir.IsDir) return Errno.ENOTDIR;
        if (Store.Dirents.TryGet(StoreKeys.Dirent(parent, name), out _)) return Errno.EEXIST;
        return Errno.Success;
    }

    private int MakeNode(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint rdev, byte[]? target, out FuseEntryOut entry, out Inode? created)
    {
        entry = default;
        created = null;
        try
        {
            lock (_ns)
            {
                int rc = CheckNewName(parent.Value, name, out Inode? dir);
                if (rc != 0) return rc;
                Inode n;
                using (Store.EnterMutation())
                {
                    n = NewInode(ctx, dir!, mode, rdev, target);
                    _inodes.Add(n);
                    InheritMergeAdvice(dir!, n);
                    Store.Dirents.Put(StoreKeys.Dirent(dir!.Ino, name), Inode.DirentValue(n.Ino, n.Mode));
                    lock (dir.Lock)
                    {
                        if (n.IsDir) dir.Nlink++;
                        dir.MtimeNs = dir.CtimeNs = n.CtimeNs;
                    }
                    _inodes.Persist(dir);
                }
                entry = EntryFor(n);
                created = n;
                return Errno.Success;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int Link(FuseRequestContext ctx, NodeId node, NodeId newParent, ReadOnlySpan<byte> newName, out FuseEntryOut entry)
    {
        entry = default;
        if (ControlDirectory.Owns(node.Value)) return Errno.EPERM;
        try
        {
            lock (_ns)
            {
                Inode? n = _inodes.Get(node.Value);
                if (n == null) return Errno.ENOENT;
                if (n.IsDir) return Errno.EPERM;
                if (n.Nlink == 0 && !n.Linkable) return Errno.ENOENT;
                int rc = CheckNewName(newParent.Value, newName, out Inode? dir);
                if (rc != 0) return rc;
                using (Store.EnterMutation())
                {
                    Store.Dirents.Put(StoreKeys.Dirent(dir!.Ino, newName), Inode.DirentValue(n.Ino, n.Mode));
                    long now = Inode.Now();
                    bool relinked;
                    lock (n.Lock)
                    {
                        relinked = n.Nlink == 0;
                        n.Nlink++;
                        n.Linkable = false;
                        n.CtimeNs = now;
                    }
                    if (relinked) _inodes.SetOrphan(n.Ino, false);
                    lock (dir.Lock) dir.MtimeNs = dir.CtimeNs = now;
                    _inodes.Persist(n);
                    _inodes.Persist(dir);
                }
                entry = EntryFor(n);
                return Errno.Success;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int Unlink(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name) => RemoveName(parent, name, directory: false);

    public int RmDir(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name) => RemoveName(parent, name, directory: true);

    private int RemoveName(NodeId parent, ReadOnlySpan<byte> name, bool directory)
    {
        try
        {
            return RemoveNameLocked(parent, name, directory);
        }
        finally
        {
            FreeDoomed();
        }
    }

    private int RemoveNameLocked(NodeId parent, ReadOnlySpan<byte> name, bool directory)
    {
        if (name.Length > NameMax) return Errno.ENAMETOOLONG;
        if (ReadOnly) return Errno.EROFS;
        if (ControlDirectory.Owns(parent.Value) || (parent.Value == InodeTable.FuseRoot && name.SequenceEqual(ControlDirectory.NameBytes))) return Errno.EPERM;
        try
        {
            lock (_ns)
            {
                Inode? dir = _inodes.Get(parent.Value);
                if (dir == null) return Errno.ENOENT;
                if (!dir.IsDir) return Errno.ENOTDIR;
                Inode? child = FindChild(dir.Ino, name);
                if (child == null) return Errno.ENOENT;
                try
                {
                    if (directory && !child.IsDir) return Errno.ENOTDIR;
                    if (!directory && child.IsDir) return Errno.EISDIR;
                    if (directory && !IsEmptyDir(child)) return Errno.ENOTEMPTY;
                    using (Store.EnterMutation())
                    {
                        Store.Dirents.Delete(StoreKeys.Dirent(dir.Ino, name));
                        DropLink(child);
                        lock (dir.Lock)
                        {
                            if (child.IsDir) dir.Nlink--;
                            dir.MtimeNs = dir.CtimeNs = child.CtimeNs;
                        }
                        _inodes.Persist(dir);
                    }
                    return Errno.Success;
                }
                finally
                {
                    // Freed (nlink 0) or unloaded if the kernel holds no reference: FindChild may
                    // have loaded it just for this request.
                    _inodes.MaybeRelease(child);
                }
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    private bool IsEmptyDir(Inode dir) => Store.Dirents.List(StoreKeys.DirentPrefix(dir.Ino), [], 1).Count == 0;

    // One name of n is gone (its dirent already deleted). Mutation held.
    private void DropLink(Inode n)
    {
        bool orphan;
        lock (n.Lock)
        {
            n.Nlink = n.IsDir || n.Nlink == 0 ? 0 : n.Nlink - 1;
            n.CtimeNs = Inode.Now();
            orphan = n.Nlink == 0;
        }
        if (orphan) _inodes.SetOrphan(n.Ino, true);
        _inodes.Persist(n);
    }

    public int Rename(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, NodeId newParent, ReadOnlySpan<byte> newName, uint flags)
    {
        try
        {
            return RenameLocked(parent, name, newParent, newName, flags);
        }
        finally
        {
            FreeDoomed();
        }
    }

    private int RenameLocked(NodeId parent, ReadOnlySpan<byte> name, NodeId newParent, ReadOnlySpan<byte> newName, uint flags)
    {
        if (name.Length > NameMax || newName.Length > NameMax) return Errno.ENAMETOOLONG;
        if ((flags & FuseConstants.RenameWhiteout) != 0 || (flags & (FuseConstants.RenameNoReplace | FuseConstants.RenameExchange)) == (FuseConstants.RenameNoReplace | FuseConstants.RenameExchange))
            return Errno.EINVAL;
        if (ReadOnly) return Errno.EROFS;
        if (ControlDirectory.Owns(parent.Value) || ControlDirectory.Owns(newParent.Value)) return Errno.EPERM;
        if ((parent.Value == InodeTable.FuseRoot && name.SequenceEqual(ControlDirectory.NameBytes)) ||
            (newParent.Value == InodeTable.FuseRoot && newName.SequenceEqual(ControlDirectory.NameBytes)))
            return Errno.EPERM;
        try
        {
            lock (_ns)
            {
                Inode? from = _inodes.Get(parent.Value), to = _inodes.Get(newParent.Value);
                if (from == null || to == null) return Errno.ENOENT;
                if (!from.IsDir || !to.IsDir) return Errno.ENOTDIR;
                if (to.Nlink == 0) return Errno.ENOENT; // removed directory: no new names
                Inode? moving = FindChild(from.Ino, name);
                if (moving == null) return Errno.ENOENT;
                Inode? victim = FindChild(to.Ino, newName);
                try
                {
                    return RenameChecked(from, name, to, newName, flags, moving, victim);
                }
                finally
                {
                    // Either may have been loaded just for this request; the victim may have lost its last name.
                    _inodes.MaybeRelease(moving);
                    if (victim != null) _inodes.MaybeRelease(victim);
                }
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // The checks and changes of a rename, both names resolved. Namespace lock held.
    private int RenameChecked(Inode from, ReadOnlySpan<byte> name, Inode to, ReadOnlySpan<byte> newName, uint flags, Inode moving, Inode? victim)
    {
        long now = Inode.Now();
        if ((flags & FuseConstants.RenameExchange) != 0)
        {
            if (victim == null) return Errno.ENOENT;
            using (Store.EnterMutation())
            {
                Store.Dirents.Put(StoreKeys.Dirent(from.Ino, name), Inode.DirentValue(victim.Ino, victim.Mode));
                Store.Dirents.Put(StoreKeys.Dirent(to.Ino, newName), Inode.DirentValue(moving.Ino, moving.Mode));
                if (from != to)
                {
                    Reparent(moving, from, to);
                    Reparent(victim, to, from);
                }
                FinishRename(now, from, to, moving, victim);
            }
            return Errno.Success;
        }

        if (victim != null)
        {
            if ((flags & FuseConstants.RenameNoReplace) != 0) return Errno.EEXIST;
            if (victim == moving) return Errno.Success; // two names of one inode: nothing to do
            if (moving.IsDir)
            {
                if (!victim.IsDir) return Errno.ENOTDIR;
                if (!IsEmptyDir(victim)) return Errno.ENOTEMPTY;
            }
            else if (victim.IsDir)
            {
                return Errno.EISDIR;
            }
        }

        using (Store.EnterMutation())
        {
            Store.Dirents.Delete(StoreKeys.Dirent(from.Ino, name));
            Store.Dirents.Put(StoreKeys.Dirent(to.Ino, newName), Inode.DirentValue(moving.Ino, moving.Mode));
            if (victim != null)
            {
                DropLink(victim);
                if (victim.IsDir) lock (to.Lock) to.Nlink--;
            }
            if (from != to) Reparent(moving, from, to);
            FinishRename(now, from, to, moving, null);
        }
        return Errno.Success;
    }

    // A directory moving between parents changes both parents' link counts ("..").
    private static void Reparent(Inode n, Inode from, Inode to)
    {
        if (!n.IsDir) return;
        lock (n.Lock) n.Parent = to.Ino;
        lock (from.Lock) from.Nlink--;
        lock (to.Lock) to.Nlink++;
    }

    private void FinishRename(long now, Inode from, Inode to, Inode moving, Inode? other)
    {
        lock (from.Lock) from.MtimeNs = from.CtimeNs = now;
        lock (to.Lock) to.MtimeNs = to.CtimeNs = now;
        lock (moving.Lock) moving.CtimeNs = now;
        _inodes.Persist(from);
        if (to != from) _inodes.Persist(to);
        _inodes.Persist(moving);
        if (other != null)
        {
            lock (other.Lock) other.CtimeNs = now;
            _inodes.Persist(other);
        }
    }
}
