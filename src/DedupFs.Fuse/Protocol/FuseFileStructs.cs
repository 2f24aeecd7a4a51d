using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>struct fuse_open_in (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseOpenIn
{
    public uint Flags;
    /// <summary>FUSE_OPEN_KILL_SUIDGID.</summary>
    public uint OpenFlags;
}

/// <summary>struct fuse_create_in (16 bytes), followed by the name.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseCreateIn
{
    public uint Flags;
    public uint Mode;
    public uint Umask;
    public uint OpenFlags;
}

/// <summary>struct fuse_open_out (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseOpenOut
{
    public ulong Fh;
    public OpenReplyFlags OpenFlags;
    /// <summary>With FOPEN_PASSTHROUGH: the id from FUSE_DEV_IOC_BACKING_OPEN.</summary>
    public int BackingId;
}

/// <summary>struct fuse_release_in (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseReleaseIn
{
    public ulong Fh;
    public uint Flags;
    public uint ReleaseFlags;
    public ulong LockOwner;
}

/// <summary>struct fuse_flush_in (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseFlushIn
{
    public ulong Fh;
    public uint Unused;
    public uint Padding;
    public ulong LockOwner;
}

/// <summary>struct fuse_read_in (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseReadIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Size;
    public uint ReadFlags;
    public ulong LockOwner;
    public uint Flags;
    public uint Padding;
}

/// <summary>struct fuse_write_in (40 bytes), followed by the data.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseWriteIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Size;
    public uint WriteFlags;
    public ulong LockOwner;
    public uint Flags;
    public uint Padding;
}

/// <summary>struct fuse_write_out (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseWriteOut
{
    public uint Size;
    public uint Padding;
}

/// <summary>struct fuse_statfs_out (80 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseStatFsOut
{
    public FuseKStatFs St;
}

/// <summary>struct fuse_fsync_in (16 bytes), for FSYNC and FSYNCDIR.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseFsyncIn
{
    public ulong Fh;
    public uint FsyncFlags;
    public uint Padding;
}

/// <summary>struct fuse_lk_in (48 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseLkIn
{
    public ulong Fh;
    public ulong Owner;
    public FuseFileLock Lk;
    public uint LkFlags;
    public uint Padding;
}

/// <summary>struct fuse_lk_out (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseLkOut
{
    public FuseFileLock Lk;
}

/// <summary>struct fuse_access_in (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseAccessIn
{
    public uint Mask;
    public uint Padding;
}

/// <summary>struct fuse_interrupt_in (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseInterruptIn
{
    public ulong Unique;
}

/// <summary>struct fuse_bmap_in (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseBmapIn
{
    public ulong Block;
    public uint BlockSize;
    public uint Padding;
}

/// <summary>struct fuse_bmap_out (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseBmapOut
{
    public ulong Block;
}

/// <summary>struct fuse_ioctl_in (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseIoctlIn
{
    public ulong Fh;
    public uint Flags;
    public uint Cmd;
    public ulong Arg;
    public uint InSize;
    public uint OutSize;
}

/// <summary>struct fuse_poll_in (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FusePollIn
{
    public ulong Fh;
    public ulong Kh;
    public uint Flags;
    public uint Events;
}

/// <summary>struct fuse_fallocate_in (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseFallocateIn
{
    public ulong Fh;
    public ulong Offset;
    public ulong Length;
    public uint Mode;
    public uint Padding;
}

/// <summary>struct fuse_lseek_in (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseLseekIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Whence;
    public uint Padding;
}

/// <summary>struct fuse_lseek_out (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseLseekOut
{
    public ulong Offset;
}

/// <summary>struct fuse_copy_file_range_in (56 bytes), for COPY_FILE_RANGE and COPY_FILE_RANGE_64.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseCopyFileRangeIn
{
    public ulong FhIn;
    public ulong OffIn;
    public ulong NodeIdOut;
    public ulong FhOut;
    public ulong OffOut;
    public ulong Len;
    public ulong Flags;
}

/// <summary>struct fuse_copy_file_range_out (8 bytes), the reply of COPY_FILE_RANGE_64 (7.45).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseCopyFileRangeOut
{
    public ulong BytesCopied;
}

/// <summary>struct fuse_syncfs_in (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseSyncFsIn
{
    public ulong Padding;
}

/// <summary>struct fuse_backing_map (16 bytes), the argument of FUSE_DEV_IOC_BACKING_OPEN.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseBackingMap
{
    public int Fd;
    public uint Flags;
    public ulong Padding;
}
