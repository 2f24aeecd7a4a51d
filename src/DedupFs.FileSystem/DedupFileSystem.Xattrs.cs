// SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR: extended attributes, one Store.Xattrs record per
// (inode, name). Namespaces user., trusted. and security. (others: EOPNOTSUPP, as ext4 without
// ACL support); values up to 64 KiB (XATTR_SIZE_MAX: E2BIG beyond); names up to 255 bytes
// (ERANGE beyond, as ext4). user. attributes exist only on regular files and directories
// (EPERM elsewhere, as ext4). The kernel checks trusted.'s CAP_SYS_ADMIN itself.
// user.dedupfs.merge is merge advice (DedupFileSystem.Merge.cs): "0" or "1" only (EINVAL).
using DedupFs.Fuse.Api;
using DedupFs.Store;

namespace DedupFs.FileSystem;

public sealed partial class DedupFileSystem
{
    private const int XattrCreate = 1, XattrReplace = 2;
    private const int XattrSizeMax = 64 * 1024;

    private static int CheckXattrName(ReadOnlySpan<byte> name)
    {
        if (name.Length == 0 || name.Length > NameMax) return Errno.ERANGE;
        if (name.StartsWith("user."u8) || name.StartsWith("trusted."u8) || name.StartsWith("security."u8)) return Errno.Success;
        return Errno.EOPNOTSUPP;
    }

    public int SetXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags)
    {
        if (ControlDirectory.Owns(node.Value)) return Errno.EPERM;
        int rc = CheckXattrName(name);
        if (rc != 0) return rc;
        if (value.Length > XattrSizeMax) return Errno.E2BIG;
        bool merge = IsMergeXattr(name);
        if (merge && CheckMergeAdvice(value) != 0) return Errno.EINVAL;
        if (ReadOnly) return Errno.EROFS;
        try
        {
            lock (_ns)
            {
                Inode? n = _inodes.Get(node.Value);
                if (n == null) return Errno.ENOENT;
                if (name.StartsWith("user."u8) && !n.IsReg && !n.IsDir) return Errno.EPERM;
                byte[] key = StoreKeys.Xattr(n.Ino, name);
                bool exists = Store.Xattrs.TryGet(key, out _);
                if ((flags & XattrCreate) != 0 && exists) return Errno.EEXIST;
                if ((flags & XattrReplace) != 0 && !exists) return Errno.ENODATA;
                using (Store.EnterMutation())
                {
                    Store.Xattrs.Put(key, value);
                    Touch(n, mtime: false, ctime: true);
                    _inodes.Persist(n);
                }
                if (merge) ApplyMergeAdvice(n, ParseMergeAdvice(value));
                return Errno.Success;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int GetXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name, Span<byte> value, out int size)
    {
        size = 0;
        if (ControlDirectory.Owns(node.Value)) return Errno.ENODATA;
        int rc = CheckXattrName(name);
        if (rc != 0) return rc == Errno.ERANGE ? Errno.ENODATA : rc;
        try
        {
            if (!Store.Xattrs.TryGet(StoreKeys.Xattr(node.Value, name), out byte[] stored)) return Errno.ENODATA;
            size = stored.Length;
            if (value.IsEmpty) return Errno.Success;
            if (stored.Length > value.Length) return Errno.ERANGE;
            stored.CopyTo(value);
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int ListXattr(FuseRequestContext ctx, NodeId node, Span<byte> names, out int size)
    {
        size = 0;
        if (ControlDirectory.Owns(node.Value)) return Errno.Success;
        try
        {
            var list = Store.Xattrs.List(StoreKeys.XattrPrefix(node.Value));
            int total = 0;
            foreach (var (key, _) in list) total += key.Length - 8 + 1;
            size = total;
            if (names.IsEmpty) return Errno.Success;
            if (total > names.Length) return Errno.ERANGE;
            int at = 0;
            foreach (var (key, _) in list)
            {
                ReadOnlySpan<byte> name = StoreKeys.NameOf(key);
                name.CopyTo(names[at..]);
                at += name.Length;
                names[at++] = 0;
            }
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int RemoveXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name)
    {
        if (ControlDirectory.Owns(node.Value)) return Errno.EPERM;
        int rc = CheckXattrName(name);
        if (rc != 0) return rc == Errno.ERANGE ? Errno.ENODATA : rc;
        if (ReadOnly) return Errno.EROFS;
        try
        {
            lock (_ns)
            {
                Inode? n = _inodes.Get(node.Value);
                if (n == null) return Errno.ENOENT;
                byte[] key = StoreKeys.Xattr(n.Ino, name);
                if (!Store.Xattrs.TryGet(key, out _)) return Errno.ENODATA;
                using (Store.EnterMutation())
                {
                    Store.Xattrs.Delete(key);
                    Touch(n, mtime: false, ctime: true);
                    _inodes.Persist(n);
                }
                if (IsMergeXattr(name)) ApplyMergeAdvice(n, null);
                return Errno.Success;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }
}
