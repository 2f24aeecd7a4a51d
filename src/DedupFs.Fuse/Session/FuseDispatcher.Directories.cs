using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

public sealed partial class FuseDispatcher
{
    private int DoReadDir(FuseRequestContext ctx, NodeId node, ref RequestReader args, ref ReplyWriter reply, bool plus)
    {
        args.TryRead<FuseReadIn>(out var read);
        var buffer = reply.Body.Slice(0, (int)Math.Min(read.Size, (uint)reply.Body.Length));
        var writer = new DirectoryWriter(buffer, plus);
        int status = _fs.ReadDir(ctx, node, new FileHandle(read.Fh), (long)read.Offset, ref writer);
        return status == Errno.Success ? reply.OkBody(writer.Length) : reply.Error(status);
    }
}
