using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>struct fuse_notify_inval_inode_out (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseNotifyInvalInodeOut
{
    public ulong Ino;
    /// <summary>Start of the range to invalidate; a negative offset invalidates attributes only.</summary>
    public long Off;
    /// <summary>Length of the range; 0 or negative means to the end of the file.</summary>
    public long Len;
}

/// <summary>struct fuse_notify_inval_entry_out (16 bytes), followed by the name and a NUL.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseNotifyInvalEntryOut
{
    public ulong Parent;
    public uint NameLen;
    public uint Flags;
}

/// <summary>struct fuse_notify_delete_out (24 bytes), followed by the name and a NUL.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseNotifyDeleteOut
{
    public ulong Parent;
    public ulong Child;
    public uint NameLen;
    public uint Padding;
}

/// <summary>struct fuse_notify_store_out (24 bytes), followed by the data.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseNotifyStoreOut
{
    public ulong NodeId;
    public ulong Offset;
    public uint Size;
    public uint Padding;
}

/// <summary>struct fuse_notify_retrieve_out (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseNotifyRetrieveOut
{
    public ulong NotifyUnique;
    public ulong NodeId;
    public ulong Offset;
    public uint Size;
    public uint Padding;
}

/// <summary>struct fuse_notify_retrieve_in (40 bytes): the NOTIFY_REPLY request that answers a retrieve.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseNotifyRetrieveIn
{
    public ulong Dummy1;
    public ulong Offset;
    public uint Size;
    public uint Dummy2;
    public ulong Dummy3;
    public ulong Dummy4;
}
