using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>struct fuse_mknod_in (16 bytes), followed by the name.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseMkNodIn
{
    public uint Mode;
    public uint Rdev;
    public uint Umask;
    public uint Padding;
}

/// <summary>struct fuse_mkdir_in (8 bytes), followed by the name.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseMkDirIn
{
    public uint Mode;
    public uint Umask;
}

/// <summary>struct fuse_rename_in (8 bytes), followed by old and new names.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseRenameIn
{
    public ulong NewDir;
}

/// <summary>struct fuse_rename2_in (16 bytes), followed by old and new names.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseRename2In
{
    public ulong NewDir;
    public uint Flags;
    public uint Padding;
}

/// <summary>struct fuse_link_in (8 bytes), followed by the new name.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseLinkIn
{
    public ulong OldNodeId;
}

/// <summary>struct fuse_setattr_in (88 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseSetAttrIn
{
    public SetAttrValid Valid;
    public uint Padding;
    public ulong Fh;
    public ulong Size;
    public ulong LockOwner;
    public ulong Atime;
    public ulong Mtime;
    public ulong Ctime;
    public uint AtimeNsec;
    public uint MtimeNsec;
    public uint CtimeNsec;
    public uint Mode;
    public uint Unused4;
    public uint Uid;
    public uint Gid;
    public uint Unused5;
}
