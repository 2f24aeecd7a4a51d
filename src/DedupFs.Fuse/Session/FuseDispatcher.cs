// The device-free heart of the session: one request's bytes in, one reply's bytes out.
//
// The kernel hands us a request as fuse_in_header + fixed arguments + variable data, and at
// the end, with FUSE_SECURITY_CTX / CREATE_SUPP_GROUP, extension records (total_extlen * 8 bytes)
// that we strip. Handle() validates the header against the opcode table, decodes the
// arguments with a cursor that cannot overrun, calls the filesystem, and encodes the reply in
// place in the caller's buffer. Anything malformed gets an EIO reply with its unique id (or is
// dropped, for the opcodes the kernel never waits on) and a log line; an exception from the
// filesystem becomes EIO. Nothing here touches /dev/fuse, so tests and fuzzers drive the whole
// protocol with byte arrays, and the session only adds reading, writing and threads.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

public sealed partial class FuseDispatcher
{
    private static readonly int InHeaderSize = Unsafe.SizeOf<FuseInHeader>();

    private readonly IFuseFileSystem _fs;
    private readonly FuseSessionOptions _options;
    private readonly IFuseLogger _log;
    private readonly object _contextsLock = new();
    private FuseRequestContext[] _contexts = [];
    private volatile bool _initialized;
    private volatile bool _destroyed;

    public FuseDispatcher(IFuseFileSystem fs, FuseSessionOptions? options = null)
    {
        _fs = fs;
        _options = options ?? new FuseSessionOptions();
        _log = _options.Logger;
    }

    /// <summary>What INIT negotiated; meaningful once <see cref="IsInitialized"/>.</summary>
    public FuseConnection Connection { get; } = new();

    public bool IsInitialized => _initialized;

    /// <summary>True once DESTROY arrived: the kernel is done with this connection.</summary>
    public bool IsDestroyed => _destroyed;

    /// <summary>Requests and errors per opcode.</summary>
    public FuseStatistics Statistics { get; } = new();

    /// <summary>Raised (on a worker thread) when INIT completed.</summary>
    public event Action? Initialized;

    internal FuseNotifier Notifier
    {
        get => Connection.Notifier;
        set => Connection.Notifier = value;
    }

    /// <summary>
    /// A context for one worker. INTERRUPT finds in-flight requests through the contexts made
    /// here, so every thread that calls <see cref="Handle"/> uses its own.
    /// </summary>
    public FuseRequestContext CreateContext()
    {
        var ctx = new FuseRequestContext();
        lock (_contextsLock)
        {
            var grown = new FuseRequestContext[_contexts.Length + 1];
            _contexts.CopyTo(grown, 0);
            grown[^1] = ctx;
            _contexts = grown;
        }

        return ctx;
    }

    /// <summary>
    /// Serves one request. Returns the length of the reply written at the start of
    /// <paramref name="replyBuffer"/>, or 0 when the request takes no reply.
    /// </summary>
    /// <param name="replyBuffer">At least <c>16 + max_write</c> bytes for READ replies.</param>
    public int Handle(ReadOnlySpan<byte> request, Span<byte> replyBuffer, FuseRequestContext ctx)
    {
        if (request.Length < InHeaderSize)
        {
            ctx.SegmentCount = 0;
            _log.Log(FuseLogLevel.Error, $"dropped a request of {request.Length} bytes: shorter than fuse_in_header");
            return 0;
        }

        var header = MemoryMarshal.Read<FuseInHeader>(request);
        var reply = new ReplyWriter(replyBuffer, header.Unique);
        ctx.SegmentCount = 0;
        bool known = OpcodeTable.TryGet(header.Opcode, out var info);
        bool needsReply = !known || info.HasReply;

        if (header.Len != request.Length || header.Len < InHeaderSize)
        {
            return Malformed(ref reply, needsReply, header, $"length field {header.Len} but {request.Length} bytes arrived");
        }

        if (!known)
        {
            Statistics.Count(header.Opcode, error: true);
            _log.Log(FuseLogLevel.Warning, $"unknown opcode {header.Opcode} (unique {header.Unique}): ENOSYS");
            return reply.Error(Errno.ENOSYS);
        }

        int extensionBytes = header.TotalExtLen * 8;
        int argumentBytes = (int)header.Len - InHeaderSize - extensionBytes;
        if (argumentBytes < info.MinArgumentSize)
        {
            return Malformed(ref reply, needsReply, header, $"{argumentBytes} bytes of arguments, {info.MinArgumentSize} needed");
        }

        if (!_initialized && header.Opcode != (uint)FuseOpcode.Init)
        {
            return Malformed(ref reply, needsReply, header, "request before INIT");
        }

        if (info.NeedsNode && header.NodeId == 0)
        {
            return Malformed(ref reply, needsReply, header, "node id 0");
        }

        var args = new RequestReader(request.Slice(InHeaderSize, argumentBytes));
        ctx.Begin(header);
        try
        {
            int length = Dispatch((FuseOpcode)header.Opcode, in header, ref args, ref reply, ctx);
            bool error = length >= ReplyWriter.HeaderSize && MemoryMarshal.Read<FuseOutHeader>(replyBuffer).Error != 0;
            Statistics.Count(header.Opcode, info.HasReply && error);
            if (_options.Trace)
            {
                Trace(in header, info, length, replyBuffer);
            }

            return info.HasReply ? length : 0;
        }
        catch (Exception e)
        {
            _log.Log(FuseLogLevel.Error, $"{info.Name} (unique {header.Unique}, node {header.NodeId}) failed: {e}");
            return info.HasReply ? reply.Error(Errno.EIO) : 0;
        }
        finally
        {
            ctx.End();
        }
    }

    /// <summary>Device-free convenience for tests: serves a request with a fresh context.</summary>
    public int Handle(ReadOnlySpan<byte> request, Span<byte> replyBuffer) => Handle(request, replyBuffer, CreateContext());

    private int Malformed(ref ReplyWriter reply, bool needsReply, in FuseInHeader header, string why)
    {
        Statistics.CountMalformed();
        string name = OpcodeTable.NameOf(header.Opcode);
        _log.Log(FuseLogLevel.Error, $"malformed {name} (unique {header.Unique}): {why}; {(needsReply ? "answered EIO" : "dropped")}");
        return needsReply ? reply.Error(Errno.EIO) : 0;
    }

    /// <summary>One line per request, like libfuse's -d: only with <see cref="FuseSessionOptions.Trace"/>.</summary>
    private void Trace(in FuseInHeader header, OpcodeInfo info, int length, ReadOnlySpan<byte> replyBuffer)
    {
        string outcome = !info.HasReply ? "no reply"
            : MemoryMarshal.Read<FuseOutHeader>(replyBuffer) is { Error: not 0 } failed ? $"error {-failed.Error} ({Interop.Libc.StrError(-failed.Error)})"
            : $"ok, {length} bytes";
        _log.Log(FuseLogLevel.Debug, $"{info.Name} unique={header.Unique} node={header.NodeId} uid={header.Uid} pid={header.Pid} len={header.Len}: {outcome}");
    }

    private int Dispatch(FuseOpcode opcode, in FuseInHeader header, ref RequestReader args, ref ReplyWriter reply, FuseRequestContext ctx)
    {
        var node = new NodeId(header.NodeId);
        return opcode switch
        {
            FuseOpcode.Init => DoInit(ref args, ref reply),
            FuseOpcode.Destroy => DoDestroy(ref reply),
            FuseOpcode.Interrupt => DoInterrupt(ref args, ref reply),
            FuseOpcode.Forget => DoForget(node, ref args),
            FuseOpcode.BatchForget => DoBatchForget(ref args),
            FuseOpcode.NotifyReply => DoNotifyReply(node, header.Unique, ref args),
            FuseOpcode.Lookup => DoLookup(ctx, node, ref args, ref reply),
            FuseOpcode.GetAttr => DoGetAttr(ctx, node, ref args, ref reply),
            FuseOpcode.SetAttr => DoSetAttr(ctx, node, ref args, ref reply),
            FuseOpcode.ReadLink => DoReadLink(ctx, node, ref reply),
            FuseOpcode.Symlink => DoSymlink(ctx, node, ref args, ref reply),
            FuseOpcode.MkNod => DoMkNod(ctx, node, ref args, ref reply),
            FuseOpcode.MkDir => DoMkDir(ctx, node, ref args, ref reply),
            FuseOpcode.Unlink => DoUnlink(ctx, node, ref args, ref reply),
            FuseOpcode.RmDir => DoRmDir(ctx, node, ref args, ref reply),
            FuseOpcode.Rename => DoRename(ctx, node, ref args, ref reply),
            FuseOpcode.Rename2 => DoRename2(ctx, node, ref args, ref reply),
            FuseOpcode.Link => DoLink(ctx, node, ref args, ref reply),
            FuseOpcode.Open => DoOpen(ctx, node, ref args, ref reply, directory: false),
            FuseOpcode.OpenDir => DoOpen(ctx, node, ref args, ref reply, directory: true),
            FuseOpcode.Read => DoRead(ctx, node, ref args, ref reply),
            FuseOpcode.Write => DoWrite(ctx, node, ref args, ref reply),
            FuseOpcode.StatFs => DoStatFs(ctx, node, ref reply),
            FuseOpcode.Release => DoRelease(ctx, node, ref args, ref reply, directory: false),
            FuseOpcode.ReleaseDir => DoRelease(ctx, node, ref args, ref reply, directory: true),
            FuseOpcode.Fsync => DoFsync(ctx, node, ref args, ref reply, directory: false),
            FuseOpcode.FsyncDir => DoFsync(ctx, node, ref args, ref reply, directory: true),
            FuseOpcode.SetXattr => DoSetXattr(ctx, node, ref args, ref reply),
            FuseOpcode.GetXattr => DoGetXattr(ctx, node, ref args, ref reply),
            FuseOpcode.ListXattr => DoListXattr(ctx, node, ref args, ref reply),
            FuseOpcode.RemoveXattr => DoRemoveXattr(ctx, node, ref args, ref reply),
            FuseOpcode.Flush => DoFlush(ctx, node, ref args, ref reply),
            FuseOpcode.ReadDir => DoReadDir(ctx, node, ref args, ref reply, plus: false),
            FuseOpcode.ReadDirPlus => DoReadDir(ctx, node, ref args, ref reply, plus: true),
            FuseOpcode.GetLk => DoGetLk(ctx, node, ref args, ref reply),
            FuseOpcode.SetLk => DoSetLk(ctx, node, ref args, ref reply, sleep: false),
            FuseOpcode.SetLkW => DoSetLk(ctx, node, ref args, ref reply, sleep: true),
            FuseOpcode.Access => DoAccess(ctx, node, ref args, ref reply),
            FuseOpcode.Create => DoCreate(ctx, node, ref args, ref reply),
            FuseOpcode.TmpFile => DoTmpFile(ctx, node, ref args, ref reply),
            FuseOpcode.Fallocate => DoFallocate(ctx, node, ref args, ref reply),
            FuseOpcode.Lseek => DoLseek(ctx, node, ref args, ref reply),
            FuseOpcode.CopyFileRange => DoCopyFileRange(ctx, node, ref args, ref reply, wide: false),
            FuseOpcode.CopyFileRange64 => DoCopyFileRange(ctx, node, ref args, ref reply, wide: true),
            FuseOpcode.StatX => DoStatX(ctx, node, ref args, ref reply),
            FuseOpcode.SyncFs => DoSyncFs(ctx, ref reply),
            FuseOpcode.Bmap => DoBmap(ctx, node, ref args, ref reply),
            _ => reply.Error(Errno.ENOSYS), // IOCTL, POLL, SETUPMAPPING, REMOVEMAPPING: not offered
        };
    }

    /// <summary>Maps a handler's result to a reply: success sends <paramref name="value"/>, anything else its errno.</summary>
    private static int Answer<T>(int status, in T value, ref ReplyWriter reply) where T : unmanaged =>
        status == Errno.Success ? reply.Ok(in value) : reply.Error(status);

    private static int Answer(int status, ref ReplyWriter reply) =>
        status == Errno.Success ? reply.Ok() : reply.Error(status);
}
