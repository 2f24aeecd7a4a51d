using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>struct fuse_dirent header (24 bytes); the name follows, the record is padded to 8 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseDirent
{
    public ulong Ino;
    /// <summary>Offset of the next entry: what the kernel passes back to continue after this one.</summary>
    public ulong Off;
    public uint NameLen;
    /// <summary>DT_* type (mode >> 12).</summary>
    public uint Type;
}

/// <summary>struct fuse_direntplus header (152 bytes): an entry_out, then a dirent and the name.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseDirentPlus
{
    public FuseEntryOut EntryOut;
    public FuseDirent Dirent;
}
