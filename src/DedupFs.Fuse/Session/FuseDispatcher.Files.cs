using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

// Requests about open files: open, read, write, sync, allocate, seek, copy, locks.
public sealed partial class FuseDispatcher
{
    /// <summary>The 32-bit COPY_FILE_RANGE reply cannot say more; the kernel clamps the same way.</summary>
    private const ulong CopyFileRange32Limit = uint.MaxValue & ~(ulong)(FuseConstants.PageSize - 1);

    private int DoOpen(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply, bool directory)
    {
        args.TryRead<FuseOpenIn>(out var open);
        int status = directory
            ? _fs.OpenDir(ctx, node, (int)open.Flags, out var result)
            : _fs.Open(ctx, node, (int)open.Flags, out result);
        return Answer(status, in result, ref reply);
    }

    private unsafe int DoRead(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseReadIn>(out var read);
        if (read.Offset > long.MaxValue)
        {
            return reply.Error(Errno.EINVAL);
        }

        int size = (int)Math.Min(read.Size, (uint)reply.Body.Length);
        // Segment 0 is left for the header; the handler's data and zero runs follow.
        var data = ctx.AllowScatter
            ? new ReadBuffer(reply.Body, size, ctx.Segments + 1, FuseRequestContext.MaxSegments - 1)
            : new ReadBuffer(reply.Body, size, null, 0);
        int status = _fs.Read(ctx, node, new FileHandle(read.Fh), (long)read.Offset, ref data);
        if (status != Errno.Success)
        {
            return reply.Error(status);
        }

        if (data.IsContiguous)
        {
            return reply.OkBody(data.Length);
        }

        int length = reply.OkBody(0) + data.Length;
        reply.SetLength(length);
        ctx.Segments[0] = new Interop.Libc.IoVec { Base = null /* the session's reply buffer */, Length = (nuint)ReplyWriter.HeaderSize };
        ctx.SegmentCount = data.SegmentCount + 1;
        return length;
    }

    private int DoWrite(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseWriteIn>(out var write);
        if (!args.TryReadBytes((int)Math.Min(write.Size, int.MaxValue), out var data) || write.Offset > long.MaxValue)
        {
            return reply.Error(Errno.EIO);
        }

        int status = _fs.Write(ctx, node, new FileHandle(write.Fh), (long)write.Offset, data, write.WriteFlags, out int written);
        return Answer(status, new FuseWriteOut { Size = (uint)written }, ref reply);
    }

    private int DoRelease(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply, bool directory)
    {
        args.TryRead<FuseReleaseIn>(out var release);
        int status = directory
            ? _fs.ReleaseDir(ctx, node, new FileHandle(release.Fh), (int)release.Flags)
            : _fs.Release(ctx, node, new FileHandle(release.Fh), (int)release.Flags, release.ReleaseFlags, release.LockOwner);
        return Answer(status, ref reply);
    }

    private int DoFsync(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply, bool directory)
    {
        args.TryRead<FuseFsyncIn>(out var fsync);
        bool dataOnly = (fsync.FsyncFlags & FuseConstants.FsyncFdatasync) != 0;
        int status = directory
            ? _fs.FsyncDir(ctx, node, new FileHandle(fsync.Fh), dataOnly)
            : _fs.Fsync(ctx, node, new FileHandle(fsync.Fh), dataOnly);
        return Answer(status, ref reply);
    }

    private int DoFlush(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseFlushIn>(out var flush);
        return Answer(_fs.Flush(ctx, node, new FileHandle(flush.Fh), flush.LockOwner), ref reply);
    }

    private int DoCreate(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryRead<FuseCreateIn>(out var create) || !args.TryReadName(out var name))
        {
            return reply.Error(Errno.EIO);
        }

        int status = _fs.Create(ctx, parent, name, create.Mode, create.Umask, (int)create.Flags, out var entry, out var open);
        return AnswerEntryAndOpen(status, in entry, in open, ref reply);
    }

    private int DoTmpFile(FuseRequestContext ctx, NodeId parent, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseCreateIn>(out var create);
        int status = _fs.TmpFile(ctx, parent, create.Mode, create.Umask, (int)create.Flags, out var entry, out var open);
        return AnswerEntryAndOpen(status, in entry, in open, ref reply);
    }

    /// <summary>CREATE and TMPFILE answer with a fuse_entry_out followed by a fuse_open_out.</summary>
    private static int AnswerEntryAndOpen(int status, in FuseEntryOut entry, in FuseOpenOut open, ref ReplyWriter reply)
    {
        if (status != Errno.Success)
        {
            return reply.Error(status);
        }

        var pair = new EntryAndOpen { Entry = entry, Open = open };
        return reply.Ok(in pair);
    }

    private int DoFallocate(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseFallocateIn>(out var fallocate);
        if (fallocate.Offset > long.MaxValue || fallocate.Length > long.MaxValue)
        {
            return reply.Error(Errno.EINVAL);
        }

        int status = _fs.Fallocate(ctx, node, new FileHandle(fallocate.Fh), (long)fallocate.Offset, (long)fallocate.Length, (int)fallocate.Mode);
        return Answer(status, ref reply);
    }

    private int DoLseek(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseLseekIn>(out var lseek);
        int status = _fs.Lseek(ctx, node, new FileHandle(lseek.Fh), (long)lseek.Offset, (int)lseek.Whence, out long result);
        return Answer(status, new FuseLseekOut { Offset = (ulong)result }, ref reply);
    }

    private int DoCopyFileRange(FuseRequestContext ctx, NodeId nodeIn, ref RequestReader args, ref ReplyWriter reply, bool wide)
    {
        args.TryRead<FuseCopyFileRangeIn>(out var copy);
        if (copy.NodeIdOut == 0 || copy.OffIn > long.MaxValue || copy.OffOut > long.MaxValue)
        {
            return reply.Error(copy.NodeIdOut == 0 ? Errno.EIO : Errno.EINVAL);
        }

        ulong length = wide ? copy.Len : Math.Min(copy.Len, CopyFileRange32Limit);
        int status = _fs.CopyFileRange(
            ctx, nodeIn, new FileHandle(copy.FhIn), (long)copy.OffIn,
            new NodeId(copy.NodeIdOut), new FileHandle(copy.FhOut), (long)copy.OffOut,
            length, copy.Flags, out ulong copied);
        if (status != Errno.Success)
        {
            return reply.Error(status);
        }

        copied = Math.Min(copied, length);
        return wide
            ? reply.Ok(new FuseCopyFileRangeOut { BytesCopied = copied })
            : reply.Ok(new FuseWriteOut { Size = (uint)copied });
    }

    private int DoBmap(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseBmapIn>(out var bmap);
        int status = _fs.Bmap(ctx, node, bmap.Block, bmap.BlockSize, out ulong block);
        return Answer(status, new FuseBmapOut { Block = block }, ref reply);
    }

    private int DoGetLk(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseLkIn>(out var lk);
        int status = _fs.GetLk(ctx, node, new FileHandle(lk.Fh), lk.Owner, in lk.Lk, out var conflict);
        return Answer(status, new FuseLkOut { Lk = conflict }, ref reply);
    }

    private int DoSetLk(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply, bool sleep)
    {
        args.TryRead<FuseLkIn>(out var lk);
        bool flock = (lk.LkFlags & FuseConstants.LkFlock) != 0;
        return Answer(_fs.SetLk(ctx, node, new FileHandle(lk.Fh), lk.Owner, in lk.Lk, sleep, flock), ref reply);
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct EntryAndOpen
    {
        public FuseEntryOut Entry;
        public FuseOpenOut Open;
    }
}
