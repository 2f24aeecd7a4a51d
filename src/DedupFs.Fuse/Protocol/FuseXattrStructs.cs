using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>
/// struct fuse_setxattr_in (16 bytes with FUSE_SETXATTR_EXT, else the 8-byte compat form),
/// followed by the name and the value.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseSetXattrIn
{
    public uint Size;
    public uint Flags;
    public uint SetXattrFlags;
    public uint Padding;
}

/// <summary>struct fuse_getxattr_in (8 bytes), for GETXATTR (followed by the name) and LISTXATTR.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseGetXattrIn
{
    public uint Size;
    public uint Padding;
}

/// <summary>struct fuse_getxattr_out (8 bytes): the size answer when the caller asked with size 0.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseGetXattrOut
{
    public uint Size;
    public uint Padding;
}
