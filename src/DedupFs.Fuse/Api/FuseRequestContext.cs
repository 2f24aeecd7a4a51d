using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Api;

/// <summary>
/// Who asked, and whether they still want the answer. One instance per worker thread, reused for
/// every request that worker serves (no allocation per request): a handler must not keep it after
/// it returns.
/// </summary>
public sealed unsafe class FuseRequestContext
{
    /// <summary>Segments of a scattered READ reply: header, then data and zero runs.</summary>
    internal const int MaxSegments = 64;

    private readonly Interop.Libc.IoVec[] _segments = GC.AllocateArray<Interop.Libc.IoVec>(MaxSegments, pinned: true);

    /// <summary>
    /// Set by the session for its workers, whose reply buffers are pinned: READ replies may then
    /// be scattered over segments (zero runs without copying). Elsewhere replies are contiguous.
    /// </summary>
    internal bool AllowScatter { get; set; }

    /// <summary>Reply segments after the header, when the last reply was scattered (0: contiguous).</summary>
    internal int SegmentCount { get; set; }

    internal Interop.Libc.IoVec* Segments => (Interop.Libc.IoVec*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _segments[0]);

    // The unique id INTERRUPT named, compared with the current one: a late INTERRUPT for the
    // previous request this worker served can never mark the next one.
    private long _interruptedUnique = -1;

    public RequestId Unique { get; private set; }
    public FuseOpcode Opcode { get; private set; }
    public NodeId Node { get; private set; }
    public uint Uid { get; private set; }
    public uint Gid { get; private set; }
    public uint Pid { get; private set; }

    /// <summary>
    /// Set when the kernel sent INTERRUPT for this request (the caller got a signal). A handler that
    /// can stop early checks it and returns <see cref="Errno.EINTR"/>; one that cannot simply finishes.
    /// </summary>
    public bool IsInterrupted => (ulong)Volatile.Read(ref _interruptedUnique) == Unique.Value && Unique.Value != 0;

    internal void Begin(in FuseInHeader header)
    {
        Volatile.Write(ref _uniqueForInterrupt, (long)header.Unique);
        Unique = new RequestId(header.Unique);
        Opcode = (FuseOpcode)header.Opcode;
        Node = new NodeId(header.NodeId);
        Uid = header.Uid;
        Gid = header.Gid;
        Pid = header.Pid;
        SegmentCount = 0;
    }

    internal void End() => Volatile.Write(ref _uniqueForInterrupt, 0);

    /// <summary>Marks the request <paramref name="unique"/> interrupted if this context is serving it.</summary>
    internal bool TryInterrupt(ulong unique)
    {
        if ((ulong)Volatile.Read(ref _uniqueForInterrupt) != unique)
        {
            return false;
        }

        Volatile.Write(ref _interruptedUnique, (long)unique);
        return true;
    }

    private long _uniqueForInterrupt;

    /// <summary>A context for calls that do not come from the kernel (tests, internal operations).</summary>
    public static FuseRequestContext Create(uint uid = 0, uint gid = 0, uint pid = 0, ulong unique = 0)
    {
        var ctx = new FuseRequestContext();
        var header = new FuseInHeader { Uid = uid, Gid = gid, Pid = pid, Unique = unique };
        ctx.Begin(header);
        return ctx;
    }
}
