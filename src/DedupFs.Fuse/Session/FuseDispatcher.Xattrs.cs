using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

// Extended attributes. GETXATTR and LISTXATTR share the size-query convention: size 0 asks
// for the length only (answered with fuse_getxattr_out), otherwise the bytes themselves.
public sealed partial class FuseDispatcher
{
    /// <summary>XATTR_SIZE_MAX: the kernel never asks for more.</summary>
    private const int XattrSizeMax = 65536;

    private int DoSetXattr(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        int headerSize = Connection.Has(InitFlags.SetXattrExt) ? 16 : 8;
        if (!args.TryReadCompat<FuseSetXattrIn>(8, headerSize, out var setxattr)
            || !args.TryReadName(out var name)
            || !args.TryReadBytes((int)Math.Min(setxattr.Size, int.MaxValue), out var value))
        {
            return reply.Error(Errno.EIO);
        }

        return Answer(_fs.SetXattr(ctx, node, name, value, (int)setxattr.Flags), ref reply);
    }

    private int DoGetXattr(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryRead<FuseGetXattrIn>(out var getxattr) || !args.TryReadName(out var name))
        {
            return reply.Error(Errno.EIO);
        }

        var buffer = SizeQueryBuffer(getxattr.Size, ref reply);
        int status = _fs.GetXattr(ctx, node, name, buffer, out int size);
        return AnswerSized(status, getxattr.Size, size, buffer.Length, ref reply);
    }

    private int DoListXattr(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseGetXattrIn>(out var listxattr);
        var buffer = SizeQueryBuffer(listxattr.Size, ref reply);
        int status = _fs.ListXattr(ctx, node, buffer, out int size);
        return AnswerSized(status, listxattr.Size, size, buffer.Length, ref reply);
    }

    private int DoRemoveXattr(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply) =>
        args.TryReadName(out var name) ? Answer(_fs.RemoveXattr(ctx, node, name), ref reply) : reply.Error(Errno.EIO);

    private static Span<byte> SizeQueryBuffer(uint requested, ref ReplyWriter reply) =>
        requested == 0 ? Span<byte>.Empty : reply.Body.Slice(0, (int)Math.Min(Math.Min(requested, XattrSizeMax), (uint)reply.Body.Length));

    private static int AnswerSized(int status, uint requested, int size, int room, ref ReplyWriter reply)
    {
        if (status != Errno.Success)
        {
            return reply.Error(status);
        }

        if (requested == 0)
        {
            return reply.Ok(new FuseGetXattrOut { Size = (uint)size });
        }

        return (uint)size > (uint)room ? reply.Error(Errno.ERANGE) : reply.OkBody(size);
    }
}
