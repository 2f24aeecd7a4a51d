using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

// Requests about names and inodes: lookup, attributes, creation and removal of entries.
public sealed partial class FuseDispatcher
{
    private const int PathMax = 4096;

    private int DoLookup(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryReadName(out var name))
        {
            return reply.Error(Errno.EIO);
        }

        return Answer(_fs.Lookup(ctx, parent, name, out var entry), in entry, ref reply);
    }

    private int DoGetAttr(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        FileHandle? fh = null;
        if (args.TryRead<FuseGetAttrIn>(out var getattr) && (getattr.GetAttrFlags & FuseConstants.GetAttrFh) != 0)
        {
            fh = new FileHandle(getattr.Fh);
        }

        return Answer(_fs.GetAttr(ctx, node, fh, out var attr), in attr, ref reply);
    }

    private int DoSetAttr(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseSetAttrIn>(out var changes);
        return Answer(_fs.SetAttr(ctx, node, in changes, out var attr), in attr, ref reply);
    }

    private int DoReadLink(FuseRequestContext ctx, NodeId node, ref ReplyWriter reply)
    {
        var target = reply.Body.Slice(0, Math.Min(PathMax, reply.Body.Length));
        int status = _fs.ReadLink(ctx, node, target, out int length);
        if (status != Errno.Success)
        {
            return reply.Error(status);
        }

        return (uint)length > (uint)target.Length ? reply.Error(Errno.ENAMETOOLONG) : reply.OkBody(length);
    }

    private int DoSymlink(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryReadName(out var name) || !args.TryReadName(out var target))
        {
            return reply.Error(Errno.EIO);
        }

        return Answer(_fs.Symlink(ctx, parent, name, target, out var entry), in entry, ref reply);
    }

    private int DoMkNod(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply)
    {
        // FUSE_COMPAT_MKNOD_IN_SIZE (8) before 7.12: mode and rdev only. Since then 16.
        if (!args.TryReadCompat<FuseMkNodIn>(8, Connection.ProtocolMinor >= 12 ? 16 : 8, out var mknod) || !args.TryReadName(out var name))
        {
            return reply.Error(Errno.EIO);
        }

        return Answer(_fs.MkNod(ctx, parent, name, mknod.Mode, mknod.Rdev, mknod.Umask, out var entry), in entry, ref reply);
    }

    private int DoMkDir(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryRead<FuseMkDirIn>(out var mkdir) || !args.TryReadName(out var name))
        {
            return reply.Error(Errno.EIO);
        }

        return Answer(_fs.MkDir(ctx, parent, name, mkdir.Mode, mkdir.Umask, out var entry), in entry, ref reply);
    }

    private int DoUnlink(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply) =>
        args.TryReadName(out var name) ? Answer(_fs.Unlink(ctx, parent, name), ref reply) : reply.Error(Errno.EIO);

    private int DoRmDir(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply) =>
        args.TryReadName(out var name) ? Answer(_fs.RmDir(ctx, parent, name), ref reply) : reply.Error(Errno.EIO);

    private int DoRename(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryRead<FuseRenameIn>(out var rename) || !args.TryReadName(out var name) || !args.TryReadName(out var newName))
        {
            return reply.Error(Errno.EIO);
        }

        return Answer(_fs.Rename(ctx, parent, name, new NodeId(rename.NewDir), newName, 0), ref reply);
    }

    private int DoRename2(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryRead<FuseRename2In>(out var rename) || !args.TryReadName(out var name) || !args.TryReadName(out var newName))
        {
            return reply.Error(Errno.EIO);
        }

        if (rename.NewDir == 0)
        {
            return reply.Error(Errno.EIO);
        }

        return Answer(_fs.Rename(ctx, parent, name, new NodeId(rename.NewDir), newName, rename.Flags), ref reply);
    }

    private int DoLink(FuseRequestContext ctx, NodeId newParent, ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryRead<FuseLinkIn>(out var link) || !args.TryReadName(out var newName) || link.OldNodeId == 0)
        {
            return reply.Error(Errno.EIO);
        }

        return Answer(_fs.Link(ctx, new NodeId(link.OldNodeId), newParent, newName, out var entry), in entry, ref reply);
    }

    private int DoStatFs(FuseRequestContext ctx, NodeId node, ref ReplyWriter reply)
    {
        int status = _fs.StatFs(ctx, node, out var stat);
        return Answer(status, new FuseStatFsOut { St = stat }, ref reply);
    }

    private int DoAccess(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseAccessIn>(out var access);
        return Answer(_fs.Access(ctx, node, (int)access.Mask), ref reply);
    }

    private int DoStatX(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseStatxIn>(out var statx);
        FileHandle? fh = (statx.GetAttrFlags & FuseConstants.GetAttrFh) != 0 ? new FileHandle(statx.Fh) : null;
        return Answer(_fs.StatX(ctx, node, fh, statx.SxFlags, statx.SxMask, out var result), in result, ref reply);
    }

    private int DoSyncFs(FuseRequestContext ctx, ref ReplyWriter reply) => Answer(_fs.SyncFs(ctx), ref reply);
}
