using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>struct fuse_sx_time (16 bytes), added in 7.39.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseSxTime
{
    public long TvSec;
    public uint TvNsec;
    public int Reserved;
}

/// <summary>struct fuse_statx (256 bytes): the kernel's struct statx as FUSE carries it.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseStatx
{
    public uint Mask;
    public uint BlkSize;
    public ulong Attributes;
    public uint Nlink;
    public uint Uid;
    public uint Gid;
    public ushort Mode;
    public ushort Spare0;
    public ulong Ino;
    public ulong Size;
    public ulong Blocks;
    public ulong AttributesMask;
    public FuseSxTime Atime;
    public FuseSxTime Btime;
    public FuseSxTime Ctime;
    public FuseSxTime Mtime;
    public uint RdevMajor;
    public uint RdevMinor;
    public uint DevMajor;
    public uint DevMinor;
    public fixed ulong Spare2[14];
}

/// <summary>struct fuse_statx_in (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseStatxIn
{
    public uint GetAttrFlags;
    public uint Reserved;
    public ulong Fh;
    public uint SxFlags;
    public uint SxMask;
}

/// <summary>struct fuse_statx_out (288 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseStatxOut
{
    public ulong AttrValid;
    public uint AttrValidNsec;
    public uint Flags;
    public fixed ulong Spare[2];
    public FuseStatx Stat;
}
