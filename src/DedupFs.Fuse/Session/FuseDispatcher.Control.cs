using System.Runtime.InteropServices;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

// INIT, DESTROY, INTERRUPT, FORGET and NOTIFY_REPLY: the requests about the connection itself.
public sealed partial class FuseDispatcher
{
    private int DoInit(ref RequestReader args, ref ReplyWriter reply)
    {
        if (!args.TryReadCompat<FuseInitIn>(16, args.Remaining, out var init))
        {
            return reply.Error(Errno.EIO);
        }

        if (init.Major > FuseConstants.KernelVersion)
        {
            // A newer major: answer with ours only; the kernel retries INIT with a major we speak.
            return reply.Ok(new FuseInitOut { Major = FuseConstants.KernelVersion, Minor = FuseConstants.KernelMinorVersion });
        }

        if (init.Major < FuseConstants.KernelVersion || init.Minor < FuseConstants.MinimumMinorVersion)
        {
            _log.Log(FuseLogLevel.Error, $"kernel speaks FUSE {init.Major}.{init.Minor}; 7.{FuseConstants.MinimumMinorVersion} or newer is needed");
            return reply.Error(Errno.EPROTO);
        }

        var capable = (InitFlags)init.Flags;
        if ((capable & InitFlags.InitExt) != 0)
        {
            capable |= (InitFlags)((ulong)init.Flags2 << 32);
        }

        var conn = Connection;
        conn.ProtocolMajor = FuseConstants.KernelVersion;
        conn.ProtocolMinor = Math.Min(init.Minor, FuseConstants.KernelMinorVersion);
        conn.Capable = capable;
        conn.MaxReadahead = init.MaxReadahead;
        conn.MaxWrite = (uint)_options.MaxWrite;
        conn.MaxPages = (ushort)Math.Min(FuseConstants.MaxMaxPages, (_options.MaxWrite + FuseConstants.PageSize - 1) / FuseConstants.PageSize);
        conn.Want = (_options.Capabilities | _options.ExtraCapabilities) & ~_options.DisabledCapabilities;

        _fs.Init(conn);

        var want = conn.Want & capable;
        if ((want & InitFlags.Passthrough) != 0 && conn.MaxStackDepth == 0)
        {
            conn.MaxStackDepth = 1;
        }

        if (conn.MaxWrite > (uint)_options.MaxWrite)
        {
            conn.MaxWrite = (uint)_options.MaxWrite; // our buffers are sized for the option, not more
        }

        conn.Want = want;
        var output = new FuseInitOut
        {
            Major = FuseConstants.KernelVersion,
            Minor = conn.ProtocolMinor,
            MaxReadahead = Math.Min(conn.MaxReadahead, init.MaxReadahead),
            Flags = (uint)((ulong)want & 0xFFFF_FFFF),
            Flags2 = (uint)((ulong)want >> 32),
            MaxBackground = conn.MaxBackground,
            CongestionThreshold = conn.CongestionThreshold,
            MaxWrite = conn.MaxWrite,
            TimeGran = conn.TimeGranularityNs,
            MaxPages = conn.MaxPages,
            MaxStackDepth = (want & InitFlags.Passthrough) != 0 ? conn.MaxStackDepth : 0,
        };

        _initialized = true;
        int length = reply.Ok(in output);
        Initialized?.Invoke();
        return length;
    }

    private int DoDestroy(ref ReplyWriter reply)
    {
        _destroyed = true;
        _fs.Destroy();
        return reply.Ok();
    }

    /// <summary>
    /// INTERRUPT: mark the named request if a worker is serving it. If none is (it finished, or
    /// its worker has not picked it up yet), answer EAGAIN: the kernel requeues the interrupt
    /// while the request is still pending and ignores the answer otherwise (fuse.rst).
    /// </summary>
    private int DoInterrupt(ref RequestReader args, ref ReplyWriter reply)
    {
        args.TryRead<FuseInterruptIn>(out var interrupt);
        foreach (var ctx in Volatile.Read(ref _contexts))
        {
            if (ctx.TryInterrupt(interrupt.Unique))
            {
                return 0; // no reply: the interrupted request's own reply answers both
            }
        }

        return reply.Error(Errno.EAGAIN);
    }

    private int DoForget(NodeId node, ref RequestReader args)
    {
        args.TryRead<FuseForgetIn>(out var forget);
        _fs.Forget(node, forget.NLookup);
        return 0;
    }

    private int DoBatchForget(ref RequestReader args)
    {
        args.TryRead<FuseBatchForgetIn>(out var batch);
        int available = args.Remaining / 16;
        int count = (int)Math.Min(batch.Count, (uint)available);
        if (count < batch.Count)
        {
            _log.Log(FuseLogLevel.Error, $"BATCH_FORGET claims {batch.Count} entries but carries {available}; forgetting those present");
        }

        args.TryReadBytes(count * 16, out var bytes);
        _fs.BatchForget(MemoryMarshal.Cast<byte, ForgetItem>(bytes));
        return 0;
    }

    private int DoNotifyReply(NodeId node, ulong notifyUnique, ref RequestReader args)
    {
        args.TryRead<FuseNotifyRetrieveIn>(out var retrieve);
        int size = (int)Math.Min(retrieve.Size, (uint)args.Remaining);
        args.TryReadBytes(size, out var data);
        _fs.RetrieveReply(notifyUnique, node, (long)retrieve.Offset, data);
        return 0;
    }

    /// <summary>
    /// The kernel refused a reply (the request was interrupted or aborted meanwhile, so writev
    /// said ENOENT): every lookup reference that reply carried was never taken, so give them
    /// back to the filesystem. This keeps lookup counts exact, as the protocol requires.
    /// </summary>
    public void ForgetUndelivered(FuseOpcode opcode, ReadOnlySpan<byte> replyBytes)
    {
        if (replyBytes.Length < ReplyWriter.HeaderSize || MemoryMarshal.Read<FuseOutHeader>(replyBytes).Error != 0)
        {
            return;
        }

        var body = replyBytes.Slice(ReplyWriter.HeaderSize);
        switch (opcode)
        {
            case FuseOpcode.Lookup or FuseOpcode.MkNod or FuseOpcode.MkDir or FuseOpcode.Symlink
                or FuseOpcode.Link or FuseOpcode.Create or FuseOpcode.TmpFile:
                if (body.Length >= 8 && MemoryMarshal.Read<ulong>(body) is var id and not 0)
                {
                    _fs.Forget(new NodeId(id), 1);
                }

                break;
            case FuseOpcode.ReadDirPlus:
                ForgetDirentPlus(body);
                break;
        }
    }

    private void ForgetDirentPlus(ReadOnlySpan<byte> body)
    {
        int headerSize = System.Runtime.CompilerServices.Unsafe.SizeOf<FuseDirentPlus>();
        while (body.Length >= headerSize)
        {
            var plus = MemoryMarshal.Read<FuseDirentPlus>(body);
            int nameLength = (int)plus.Dirent.NameLen;
            int recordSize = DirectoryWriter.Align8(headerSize + nameLength);
            if (recordSize > body.Length)
            {
                return;
            }

            var name = body.Slice(headerSize, nameLength);
            if (plus.EntryOut.NodeId != 0 && !DirectoryWriter.IsDotOrDotDot(name))
            {
                _fs.Forget(new NodeId(plus.EntryOut.NodeId), 1);
            }

            body = body.Slice(recordSize);
        }
    }
}
