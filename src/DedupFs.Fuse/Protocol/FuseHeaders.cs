// Wire structures of the kernel's FUSE protocol, 7.45 (include/uapi/linux/fuse.h).
// Field names follow fuse.h in PascalCase; padding fields are named so that every byte is
// accounted for. Sizes are asserted by the codec tests against the kernel's numbers.
using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>struct fuse_in_header (40 bytes): precedes every request.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseInHeader
{
    public uint Len;
    public uint Opcode;
    public ulong Unique;
    public ulong NodeId;
    public uint Uid;
    public uint Gid;
    public uint Pid;
    /// <summary>Length of request extensions (security context, supplementary group) in 8-byte units.</summary>
    public ushort TotalExtLen;
    public ushort Padding;
}

/// <summary>struct fuse_out_header (16 bytes): precedes every reply and notification.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseOutHeader
{
    public uint Len;
    /// <summary>Zero or a negated errno for replies; the notify code for notifications (Unique = 0).</summary>
    public int Error;
    public ulong Unique;
}
